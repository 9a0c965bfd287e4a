"""`build`: the figures and lists the templates show, and the cost of reading a big timeline."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import event

from bot.config import Severity
from bot.db import Database
from bot.incidents.models import Incident, Status
from bot.postmortem import service
from bot.postmortem.describe import describe
from bot.timeline.models import TimelineEvent
from tests.postmortem.seed import T0, at, bare_incident, ev, page, seed_full, seed_unacknowledged

NOW = T0 + timedelta(hours=2)


async def build(db: Database, number: int) -> Any:
    async with db.session() as session:
        return await service.build(session, incident_id=number, now=NOW)


async def test_metrics_of_a_resolved_incident(db: Database) -> None:
    data = await build(db, await seed_full(db))
    assert data.acknowledged.after == timedelta(minutes=4)
    assert data.acknowledged.by == "U0BOB"
    assert data.mitigated.after == timedelta(minutes=41)
    assert data.mitigated.note == ""
    assert data.resolved.after == timedelta(minutes=65, seconds=30)
    assert data.duration == timedelta(minutes=65, seconds=30)
    assert data.severity == "P1" and data.severity_at_declaration == "P2"
    assert data.services == ["gateway"]
    assert data.first_alert is not None and data.first_alert.offset == timedelta(minutes=-2)


async def test_metrics_of_an_unacknowledged_incident_are_missing_not_zero(db: Database) -> None:
    data = await build(db, await seed_unacknowledged(db))
    for metric, words in (
        (data.acknowledged, "not acknowledged"),
        (data.mitigated, "not mitigated"),
        (data.resolved, "not resolved yet"),
    ):
        assert metric.at is None and metric.after is None and metric.missing == words
    assert data.ongoing_for == timedelta(hours=2)
    assert data.pages == 1


async def test_mitigation_taken_at_resolve_is_flagged(db: Database) -> None:
    """The foundation sets mitigated_at = resolved_at when nobody said `monitoring`; say so."""
    async with db.session() as session:
        incident = Incident(
            title="x",
            severity=Severity.P2,
            declared_by="U0ALICE",
            declared_at=at(0),
            status=Status.RESOLVED,
            resolved_at=at(30),
            mitigated_at=at(30),
            resolved_by="U0ALICE",
        )
        session.add(incident)
        await session.commit()
        number = incident.id
    assert number is not None
    data = await build(db, number)
    assert data.mitigated.after == timedelta(minutes=30)
    assert "no `monitoring` status update" in data.mitigated.note
    assert data.mitigated.by == "U0ALICE"  # who resolved: that is what set the time


async def test_mitigated_names_who_first_set_monitoring(db: Database) -> None:
    data = await build(db, await seed_full(db))
    assert data.mitigated.by == "U0CAROL"  # `monitoring` at 41m; the later re-statement changes nothing
    async with db.session() as session:
        n = await bare_incident(session)
        session.add_all(
            [
                ev(n, 2, "status", "U0BOB", data={"old": "investigating", "new": "monitoring"}),
                ev(n, 5, "status", "U0CAROL", data={"old": "monitoring", "new": "identified"}),
                ev(n, 8, "status", "U0CAROL", data={"old": "identified", "new": "monitoring"}),
            ]
        )
        await session.commit()
    assert (await build(db, n)).mitigated.by == "U0BOB"


async def test_ack_and_monitoring_fall_back_to_the_timeline(db: Database) -> None:
    """Rows written before the columns were filled still give the right metrics."""
    async with db.session() as session:
        n = await bare_incident(session)
        session.add_all(
            [
                ev(n, 3, "ack", "U0BOB", data={"first": True}),
                ev(n, 7, "ack", "U0CAROL", data={"first": False}),
                ev(n, 9, "status", "U0BOB", data={"old": "investigating", "new": "monitoring"}),
            ]
        )
        await session.commit()
    data = await build(db, n)
    assert (data.acknowledged.after, data.acknowledged.by) == (timedelta(minutes=3), "U0BOB")
    assert data.mitigated.after == timedelta(minutes=9)
    # The second ack is an escalation row but not a key event.
    assert [e.text for e in data.escalations] == ["first acknowledgement", "acknowledged again"]
    assert [e.kind for e in data.key_events] == ["ack", "status"]


async def test_key_events_are_pinned_messages_and_state_changes(db: Database) -> None:
    data = await build(db, await seed_full(db))
    assert [e.kind for e in data.key_events] == [
        "declared",
        "severity",
        "ack",
        "role",
        "message",
        "status",
        "status",
        "resolved",
    ]
    # A status update that repeats the status is not a state change.
    assert all(e.text != "still fine" for e in data.key_events)
    assert len(data.events) == 26


async def test_escalations_count_only_pages_sent(db: Database) -> None:
    data = await build(db, await seed_full(db))
    assert data.pages == 2
    assert [(e.kind, e.who) for e in data.escalations] == [
        ("page", ["U0BOB"]),
        ("ack", ["U0BOB"]),
        ("page", ["U0LEAD"]),
        ("stopped", []),
    ]
    late = data.escalations[2]
    assert late.late == "sent 2m 10s late"
    assert "<@U0GONE> (user_not_found)" in late.text


async def test_a_page_pagerduty_took_counts_and_one_that_reached_nobody_does_not(db: Database) -> None:
    async with db.session() as session:
        number = await bare_incident(session)
        session.add(
            ev(
                number,
                1,
                "page",
                text="Paged level 1 (On-call) via PagerDuty",
                data=page(1, "On-call", [], via=["PagerDuty"]),
            )
        )
        session.add(
            ev(
                number,
                2,
                "page",
                text="Page for level 2 (Lead) reached nobody",
                data=page(2, "Lead", [], failed={"S0TEAM": "no members"}),
            )
        )
        await session.commit()
    data = await build(db, number)
    assert data.pages == 1
    assert [(e.kind, e.level, e.text) for e in data.escalations] == [
        ("page", "1 (On-call)", "via PagerDuty"),
        ("page", "2 (Lead)", "could not reach <@S0TEAM> (no members)"),
    ]


async def test_a_level_that_only_told_someone_paged_before_says_so(db: Database) -> None:
    """The on-call engineer is the team lead too: level 2 paged the CTO and told the engineer it escalated."""
    async with db.session() as session:
        number = await bare_incident(session)
        session.add(ev(number, 1, "page", text="Paged level 1 (On-call)", data=page(1, "On-call", ["U0BOB"])))
        level_2 = {**page(2, "Lead", ["U0BOB", "U0CTO"]), "noted": {"U0BOB": 1}}
        session.add(ev(number, 2, "page", text="Paged level 2 (Lead)", data=level_2))
        await session.commit()
    data = await build(db, number)
    assert [(e.level, e.who, e.text) for e in data.escalations] == [
        ("1 (On-call)", ["U0BOB"], ""),
        ("2 (Lead)", ["U0BOB", "U0CTO"], "<@U0BOB> already paged at level 1, told it escalated"),
    ]
    assert describe("page", "Paged level 2 (Lead)", level_2) == (
        "Paged <@U0BOB>, <@U0CTO> (level 2, Lead) — <@U0BOB> already paged at level 1, told it escalated"
    )


async def test_a_level_that_only_told_someone_paged_before_is_not_counted_as_a_page(db: Database) -> None:
    """Level 2 paged nobody anew (the on-call engineer is the team lead too); level 3 paged the CTO and told
    the engineer: two pages and one note, in the figures and in the rendered draft."""
    async with db.session() as session:
        number = await bare_incident(session)
        session.add(ev(number, 1, "page", text="Paged level 1 (On-call)", data=page(1, "On-call", ["U0BOB"])))
        level_2 = {**page(2, "Lead", ["U0BOB"]), "noted": {"U0BOB": 1}}
        session.add(ev(number, 2, "page", text="Level 2 (Lead): already paged at level 1", data=level_2))
        level_3 = {**page(3, "CTO", ["U0BOB", "U0CTO"]), "noted": {"U0BOB": 1}}
        session.add(ev(number, 3, "page", text="Paged level 3 (CTO)", data=level_3))
        await session.commit()
    data = await build(db, number)
    assert (data.pages, data.page_notes) == (2, 1)
    assert [e.level for e in data.escalations] == ["1 (On-call)", "2 (Lead)", "3 (CTO)"]  # the note still shown
    text = service.render(data, fmt="markdown")
    assert "2 pages sent (and 1 note to people already paged that it escalated); not acknowledged." in text


async def test_responders_are_people_with_what_they_did(db: Database) -> None:
    data = await build(db, await seed_full(db))
    roles = {r.user: r.roles for r in data.responders}
    assert "alertmanager" not in roles
    assert roles["U0ALICE"] == ["commander (handed over)", "declared"]
    assert roles["U0CAROL"] == ["commander", "resolved"]
    assert roles["U0BOB"] == ["acknowledged first", "paged"]
    assert roles["U0DAVE"] == ["comms"]
    assert [r.user for r in data.responders][:2] == ["U0ALICE", "U0BOB"]


async def test_actions_playbook_notes_and_items(db: Database) -> None:
    data = await build(db, await seed_full(db))
    assert [(a.action, a.service, a.outcome, a.actor) for a in data.actions] == [
        ("restart", "gateway", "failed", "U0BOB"),
        ("rollback", "gateway", "succeeded", "U0LEAD"),
    ]
    assert [(s.playbook, s.step, s.status) for s in data.playbook_steps] == [
        ("Service down", "—", "started"),
        ("Service down", "Check health endpoints", "done"),
        ("Service down", "Restart the service", "skipped"),
    ]
    assert [n.text for n in data.notes] == ["Deploy dep-42 went out at 08:55 | 5xx since 08:57"]
    assert [(i.text, i.owner, i.done) for i in data.action_items] == [
        ("Add a canary stage to gateway deploys", "U0BOB", False),
        ("Alert on 5xx ratio > 5% for 2m [gateway]", None, True),
    ]
    async with db.session() as session:
        open_items = await service.list_action_items(session, incident_id=data.number, open_only=True)
    assert [i.text for i in open_items] == ["Add a canary stage to gateway deploys"]


async def test_timeline_order_is_time_then_id(db: Database) -> None:
    """Events at the same instant keep the order they were written in."""
    async with db.session() as session:
        n = await bare_incident(session)
        for i in range(5):
            session.add(ev(n, 1, "note", "U0BOB", f"same instant {i}"))
            await session.flush()
        session.add(ev(n, 0.5, "note", "U0BOB", "earlier, written last"))
        await session.commit()
    data = await build(db, n)
    assert [e.text for e in data.events] == ["earlier, written last"] + [f"same instant {i}" for i in range(5)]


async def test_build_costs_a_fixed_number_of_queries(db: Database) -> None:
    """No query per event: 20 events and 2,000 events cost the same."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    async def seed(events: int) -> int:
        async with db.session() as session:
            n = await bare_incident(session)
            session.add_all(
                ev(
                    n,
                    i / 10,
                    ["note", "page", "ack", "deploy", "playbook_step"][i % 5],
                    "U0BOB",
                    f"e{i}",
                    data=page(1, "L1", ["U0BOB"]) if i % 5 == 1 else {},
                )
                for i in range(events)
            )
            await session.commit()
            return n

    small, large = await seed(20), await seed(2000)
    event.listen(db.engine.sync_engine, "before_cursor_execute", count)
    try:
        await build(db, small)
        few = len(statements)
        statements.clear()
        data = await build(db, large)
        # incident, timeline, action items, written sections: four, however long the timeline
        assert len(statements) == few <= 4, statements
        assert len(data.events) == 2000
    finally:
        event.remove(db.engine.sync_engine, "before_cursor_execute", count)


async def test_events_of_other_incidents_are_not_included(db: Database) -> None:
    first = await seed_full(db)
    second = await seed_unacknowledged(db)
    async with db.session() as session:
        session.add(TimelineEvent(incident_id=second, at=at(1), kind="note", actor="U0BOB", text="other", data={}))
        await session.commit()
    data = await build(db, first)
    assert all(e.text != "other" for e in data.events)


def test_a_text_that_names_its_kind_is_not_prefixed_twice() -> None:
    """The post-mortem said "Health: Health: 1 healthy" and "Post-mortem: Post-mortem draft shared"."""
    assert describe("health", "Health: 1 healthy, 1 failing (billing: HTTP 503)", {}) == (
        "Health: 1 healthy, 1 failing (billing: HTTP 503)"
    )
    assert describe("postmortem", "Post-mortem draft shared: INC-7.md", {}) == ("Post-mortem draft shared: INC-7.md")
    assert describe("health", "gateway failing", {}) == "Health: gateway failing"


async def test_one_restart_is_one_action_from_start_to_outcome(db: Database) -> None:
    """A restart writes `started`, then its outcome: the post-mortem counted one restart as two."""
    async with db.session() as session:
        number = await bare_incident(session)
        for minutes, actor, text, outcome in (
            (5, "U0BOB", "Restart of gateway on railway: started", "started"),
            (6, "U0LEAD", "Rollback of web on vercel: started", "started"),
            (7, "U0BOB", "Restart of gateway on railway: succeeded, healthy", "succeeded"),
            (9, "U0BOB", "Restart of gateway on railway: started", "started"),
            (12, None, "Restart of gateway: interrupted (the bot stopped while following it)", "interrupted"),
            (14, "U0LEAD", "Rollback of web on vercel: failed, alias job skipped", "failed"),
        ):
            data = {"action": text.split()[0].lower(), "service": text.split()[2].rstrip(":"), "outcome": outcome}
            session.add(ev(number, minutes, "deploy", actor, text, data=data))
        await session.commit()

    data = await build(db, number)

    assert [(a.action, a.service, a.outcome, a.actor, a.offset) for a in data.actions] == [
        ("restart", "gateway", "succeeded", "U0BOB", timedelta(minutes=5)),
        ("rollback", "web", "failed", "U0LEAD", timedelta(minutes=6)),
        ("restart", "gateway", "interrupted", "U0BOB", timedelta(minutes=9)),
    ]
    assert data.actions[0].detail == "Restart of gateway on railway: succeeded, healthy"
