"""Times in the post-mortem agree with each other: a T+ or a duration matches the times printed
beside it (cut to the second), and the detection section starts where the impact does."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from bot.config import Severity
from bot.db import Database
from bot.incidents.models import Incident, Status
from bot.postmortem import service
from bot.timeline.models import TimelineEvent
from tests.postmortem.seed import T0

DECLARED = T0 + timedelta(milliseconds=900)  # 09:00:00.900, shown as 09:00:00


def second(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


async def build_and_render(db: Database, incident: Incident, events: list[dict[str, Any]]) -> tuple[Any, str]:
    async with db.session() as session:
        session.add(incident)
        await session.flush()
        assert incident.id is not None
        session.add_all(TimelineEvent(incident_id=incident.id, **{"data": {}, **e}) for e in events)
        await session.commit()
        number = incident.id
    async with db.session() as session:
        data = await service.build(session, incident_id=number, now=T0 + timedelta(hours=1))
    return data, service.render(data, fmt="markdown")


async def test_t_plus_and_metrics_count_between_the_times_as_shown(db: Database) -> None:
    incident = Incident(
        title="Checkout is down",
        severity=Severity.P1,
        declared_by="U0ALICE",
        declared_at=DECLARED,
        status=Status.RESOLVED,
        acknowledged_at=second(10.2),
        acknowledged_by="U0BOB",
        resolved_at=second(12.4),
        resolved_by="U0ALICE",
        mitigated_at=second(12.4),
    )
    data, text = await build_and_render(
        db,
        incident,
        [
            {"at": DECLARED, "kind": "declared", "actor": "U0ALICE", "text": "Checkout is down", "key": True},
            {"at": second(4.1), "kind": "note", "actor": "U0BOB", "text": "early in second 4"},
            {"at": second(4.95), "kind": "note", "actor": "U0BOB", "text": "late in second 4"},
            {"at": second(10.2), "kind": "ack", "actor": "U0BOB", "data": {"first": True}, "key": True},
            {"at": second(12.4), "kind": "resolved", "actor": "U0ALICE", "text": "fixed", "key": True},
        ],
    )
    # 09:00:04 is T+4s whichever part of that second it came in, and 4s after 09:00:00.
    assert [e.offset.total_seconds() for e in data.events] == [0, 4, 4, 10, 12]
    assert "| 2026-11-20 09:00:04 | T+4s | @U0BOB | note | Note: early in second 4 |" in text
    assert "| 2026-11-20 09:00:04 | T+4s | @U0BOB | note | Note: late in second 4 |" in text
    assert "| First acknowledged | 2026-11-20 09:00:10 | 10s | @U0BOB |" in text
    assert "| Resolved | 2026-11-20 09:00:12 | 12s | @U0ALICE |" in text
    assert incident.duration == timedelta(seconds=12)  # what Slack says when it is resolved


def alert_declared(impact_started_at: datetime) -> tuple[Incident, list[dict[str, Any]]]:
    """Declared from an alert that started firing two minutes before; linked to the incident just after."""
    incident = Incident(
        title="ServiceDown",
        severity=Severity.P1,
        declared_by="U0ALICE",
        declared_at=DECLARED,
        impact_started_at=impact_started_at,
    )
    link = {"source": "alertmanager", "how": "button", "impact_started_at": "2026-11-20T08:58:00Z"}
    events = [
        {"at": DECLARED, "kind": "declared", "actor": "U0ALICE", "text": "ServiceDown", "key": True},
        {"at": second(1.2), "kind": "alert", "actor": "U0ALICE", "text": "declared from alert", "data": link},
    ]
    return incident, events


async def test_detection_starts_with_the_alert_where_the_impact_does(db: Database) -> None:
    incident, events = alert_declared(T0 - timedelta(minutes=2))
    data, text = await build_and_render(db, incident, events)
    assert "| Start | 2026-11-20 08:58:00 UTC (first alert) |" in text
    assert data.first_alert_started == data.impact_start
    detection = text.split("## Detection")[1].split("##")[0]
    assert "- First alert: started firing at 2026-11-20 08:58:00 UTC (T-2m 00s), when the impact started.\n" in (
        detection
    )
    assert "- Alert on the incident's timeline at 2026-11-20 09:00:01 UTC (T+1s): Alert: declared from alert\n" in (
        detection
    )
    assert "at 2026-11-20 09:00:00 UTC, 2m 00s after the first alert started firing.\n" in detection
    assert "First alert: 2026-11-20 09:00:01" not in detection
    html = service.render(data, fmt="html")
    assert "First alert: started firing at 2026-11-20 08:58:00 UTC (T-2m 00s), when the impact started." in html


async def test_detection_keeps_the_alert_start_when_someone_corrected_the_impact_start(db: Database) -> None:
    incident, events = alert_declared(T0 - timedelta(minutes=30))
    corrected = {"impact_started_at": "2026-11-20T08:30:00Z"}
    events.append({"at": second(60), "kind": "impact", "actor": "U0BOB", "text": "set", "data": corrected})
    data, text = await build_and_render(db, incident, events)
    assert "| Start | 2026-11-20 08:30:00 UTC (set by @U0BOB) |" in text
    assert "- First alert: started firing at 2026-11-20 08:58:00 UTC (T-2m 00s).\n" in text
