"""Seeded incidents for the post-mortem tests, written straight into the tables (no Slack involved)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Severity
from bot.db import Database
from bot.incidents.models import ActionItem, Incident, Status
from bot.timeline.models import TimelineEvent

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def ev(
    incident_id: int, minutes: float, kind: str, actor: str | None = None, text: str = "", **kw: Any
) -> TimelineEvent:
    data = kw.pop("data", {})
    return TimelineEvent(incident_id=incident_id, at=at(minutes), kind=kind, actor=actor, text=text, data=data, **kw)


def page(
    level: int,
    name: str,
    sent_to: list[str],
    *,
    failed: dict[str, str] | None = None,
    late: float = 0.0,
    via: list[str] | None = None,
) -> dict[str, object]:
    """A `page` event's data as bot.escalation writes it."""
    return {
        "action": "sent",
        "level": level,
        "name": name,
        "repeat": 0,
        "sent_to": sent_to,
        "failed": failed or {},
        "late": late > 0,
        "late_seconds": late,
        "errors": [],
        "via": via or [],
    }


async def bare_incident(session: AsyncSession) -> int:
    """An open P2 with nothing on its timeline yet; the caller adds events and commits."""
    incident = Incident(title="x", severity=Severity.P2, declared_by="U0ALICE", declared_at=at(0))
    session.add(incident)
    await session.flush()
    assert incident.id is not None
    return incident.id


async def seed_full(db: Database, *, title: str = "Checkout | payments API down", note: str | None = None) -> int:
    """A resolved P1 with one event of every kind, two pages, an ack, a restart and a rollback."""
    async with db.session() as session:
        incident = Incident(
            id=7,
            title=title,
            severity=Severity.P1,
            service="gateway",
            playbook_id="service-down",
            description="Users get 502 on /checkout.\n# not a heading\n- not a list",
            declared_by="U0ALICE",
            commander="U0CAROL",
            comms="U0DAVE",
            channel_id="C0INC7",
            channel_name="inc-7-checkout-payments-api-down",
            status=Status.RESOLVED,
            declared_at=at(0),
            acknowledged_at=at(4),
            acknowledged_by="U0BOB",
            mitigated_at=at(41),
            resolved_at=at(65.5),
            resolved_by="U0CAROL",
            resolution="Rolled back gateway to dep-41.\nErrors back to baseline at 10:05.",
        )
        session.add(incident)
        await session.flush()
        n = incident.id
        assert n is not None
        session.add_all(
            [
                ev(n, -2, "alert", "alertmanager", "GatewayDown firing: 5xx ratio 42%", data={"service": "gateway"}),
                ev(n, 0, "declared", "U0ALICE", title, key=True, data={"severity": "P2", "service": "gateway"}),
                ev(n, 0, "setup", None, "channel #inc-7-checkout-payments-api-down created"),
                ev(n, 0, "page", None, "Paged level 1 (On-call engineer)", data=page(1, "On-call engineer", ["U0BOB"])),
                ev(
                    n,
                    0,
                    "playbook",
                    "U0ALICE",
                    "Started playbook Service down",
                    data={
                        "status": "started",
                        "playbook_id": "service-down",
                        "title": "Service down",
                        "steps": 6,
                    },
                ),
                ev(n, 1, "severity", "U0ALICE", "P2 → P1", key=True, data={"old": "P2", "new": "P1"}),
                ev(n, 2, "health", None, "gateway failing: 503 in 120 ms", data={"service": "gateway"}),
                ev(n, 3, "chat_error", None, "pins.add failed: not_in_channel"),
                ev(n, 4, "ack", "U0BOB", "", key=True, data={"first": True}),
                ev(
                    n,
                    5,
                    "role",
                    "U0ALICE",
                    "commander: U0CAROL",
                    data={
                        "role": "commander",
                        "user": "U0CAROL",
                        "previous": "U0ALICE",
                    },
                ),
                ev(
                    n,
                    6,
                    "message",
                    "U0BOB",
                    "Looks like the deploy at 08:55 broke *everything* <@U0CAROL>",
                    key=True,
                    channel_id="C0INC7",
                    message_ts="1763629560.000100",
                    permalink="https://example.slack.com/archives/C0INC7/p1763629560000100",
                ),
                ev(
                    n,
                    7,
                    "message",
                    "U0DAVE",
                    "customers are asking on twitter",
                    channel_id="C0INC7",
                    message_ts="1763629620.000200",
                ),
                ev(
                    n,
                    8,
                    "playbook_step",
                    "U0BOB",
                    "Completed step 1/6 of Service down: Check health endpoints",
                    data={
                        "status": "done",
                        "playbook_id": "service-down",
                        "step_id": "health",
                        "step_title": "Check health endpoints",
                        "required": True,
                    },
                ),
                ev(n, 9, "status", "U0BOB", "bad deploy suspected", data={"old": "investigating", "new": "identified"}),
                ev(n, 10, "note", "U0BOB", note or "Deploy dep-42 went out at 08:55 | 5xx since 08:57"),
                ev(
                    n,
                    12,
                    "deploy",
                    "U0BOB",
                    "Restart of gateway on railway failed: deployment CRASHED",
                    data={"action": "restart", "service": "gateway", "outcome": "failed"},
                ),
                ev(
                    n,
                    15,
                    "page",
                    None,
                    "Paged level 2 (Team lead)",
                    data=page(2, "Team lead", ["U0LEAD"], failed={"U0GONE": "user_not_found"}, late=130.2),
                ),
                ev(
                    n,
                    15,
                    "playbook_step",
                    "U0BOB",
                    "Skipped step 4/6 of Service down: Restart the service: no help",
                    data={
                        "status": "skipped",
                        "playbook_id": "service-down",
                        "step_id": "restart",
                        "step_title": "Restart the service",
                        "required": False,
                        "reason": "no help",
                    },
                ),
                ev(n, 16, "reminder", None, "No status update for 15 minutes"),
                ev(n, 20, "action_item", "U0CAROL", "Add a canary stage to gateway deploys", data={"owner": "U0BOB"}),
                ev(
                    n,
                    30,
                    "deploy",
                    "U0LEAD",
                    "Rollback of gateway to dep-41 succeeded in 1m 40s",
                    data={"action": "rollback", "service": "gateway", "outcome": "succeeded"},
                ),
                ev(
                    n,
                    41,
                    "status",
                    "U0CAROL",
                    "error rate back to normal",
                    data={
                        "old": "identified",
                        "new": "monitoring",
                    },
                ),
                ev(n, 50, "status", "U0CAROL", "still fine", data={"old": "monitoring", "new": "monitoring"}),
                ev(
                    n,
                    65.5,
                    "page",
                    None,
                    "Escalation stopped: resolved",
                    data={
                        "action": "cancelled",
                        "levels": [3],
                        "reason": "resolved",
                    },
                ),
                ev(n, 65.5, "resolved", "U0CAROL", "Rolled back gateway to dep-41.", key=True),
                ev(
                    n,
                    66,
                    "postmortem",
                    None,
                    "Post-mortem draft uploaded: INC-7-postmortem.md",
                    data={"finished": False},
                ),
            ]
        )
        session.add_all(
            [
                ActionItem(
                    incident_id=n,
                    text="Add a canary stage to gateway deploys",
                    owner="U0BOB",
                    created_by="U0CAROL",
                    created_at=at(20),
                ),
                ActionItem(
                    incident_id=n,
                    text="Alert on 5xx ratio > 5% for 2m [gateway]",
                    owner=None,
                    created_by="U0BOB",
                    created_at=at(70),
                    done=True,
                ),
            ]
        )
        await session.commit()
        return n


async def seed_unacknowledged(db: Database) -> int:
    """An open P3 nobody acknowledged: one page, no ack, no status update."""
    async with db.session() as session:
        incident = Incident(
            title="Slow search",
            severity=Severity.P3,
            service="api",
            declared_by="U0ALICE",
            commander="U0ALICE",
            declared_at=at(0),
        )
        session.add(incident)
        await session.flush()
        n = incident.id
        assert n is not None
        session.add_all(
            [
                ev(n, 0, "declared", "U0ALICE", "Slow search", key=True, data={"severity": "P3", "service": "api"}),
                ev(n, 0, "page", None, "Paged level 1 (On-call engineer)", data=page(1, "On-call engineer", ["U0BOB"])),
            ]
        )
        await session.commit()
        return n
