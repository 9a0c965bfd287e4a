"""Status-update reminders for open P1/P2 incidents, and the post-mortem chase after resolution."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.flows import Escalator
from bot.escalation.models import ReminderKind
from bot.escalation.reminders import rows as reminder_rows
from bot.incidents import service as incidents
from bot.incidents.models import Role
from bot.timeline import service as timeline
from bot.timeline.models import TimelineEvent
from tests.escalation.conftest import (
    FakePager,
    MakeEscalator,
    Start,
    acknowledge,
    declare,
    resolve,
    set_severity,
    status_update,
)


def kinds(pager: FakePager) -> list[str]:
    return [reminder.kind for _, reminder in pager.reminders]


async def resolved(db: Database, clock: FakeClock, escalator: Escalator) -> int:
    """An incident declared and resolved at once (never paged); the escalator is told of the resolution."""
    incident = await declare(db, clock)
    assert incident.id is not None
    await resolve(db, clock, incident.id)
    await escalator.incident_resolved(incident.id)
    return incident.id


async def postmortem_event(db: Database, clock: FakeClock, incident_id: int, *data: dict[str, Any]) -> None:
    """`postmortem` timeline rows with this `data`, odd ones too (the typed writers cannot write those)."""
    async with db.session() as session:
        for item in data:
            session.add(TimelineEvent(incident_id=incident_id, kind="postmortem", at=clock.now(), data=item))
        await session.commit()


async def test_silent_p1_is_reminded_every_interval_and_the_commander_is_mentioned(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(declared_by="U0BOB")
    clock.advance(timedelta(minutes=14))
    await escalator.run_due()
    assert pager.reminders == []
    clock.advance(timedelta(minutes=1))
    await escalator.run_due()
    assert kinds(pager) == ["status_update"]
    assert pager.reminders[0][1].mention == ["U0BOB"]
    assert pager.reminders[0][1].overdue_by == timedelta(minutes=15)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert kinds(pager) == ["status_update", "status_update"]
    async with db.session() as session:
        events = await timeline.events(session, incident_id=incident_id, kinds=["reminder"])
    assert len(events) == 2


async def test_a_status_update_pushes_the_reminder_back(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=10))
    await status_update(db, clock, incident_id)
    clock.advance(timedelta(minutes=5))
    await escalator.run_due()  # 15 min after declaring, 5 after the update: not yet
    assert pager.reminders == []
    assert await escalator.next_due() == clock.now() + timedelta(minutes=10)
    clock.advance(timedelta(minutes=10))
    await escalator.run_due()
    assert kinds(pager) == ["status_update"]
    assert pager.reminders[0][1].overdue_by == timedelta(minutes=15)


async def test_commander_is_the_one_mentioned(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    incident = await declare(db, clock)
    assert incident.id is not None
    async with db.session() as session:
        loaded = await incidents.get(session, number=incident.id)
        await incidents.assign_role(
            session,
            incident=loaded,
            role=Role.COMMANDER,
            user="U0CAROL",
            actor="U0ALICE",
            now=clock.now(),
        )
    await escalator.incident_declared(incident.id)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert pager.reminders[0][1].mention == ["U0CAROL"]


async def test_an_alert_declared_incident_reminds_whoever_acknowledged_it_not_the_alert_source(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """Auto-declared: no commander, declared and resolved by `alertmanager`, which is nobody to ping."""
    escalator, incident_id = await start(declared_by="alertmanager")
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert pager.reminders[-1][1].mention == []  # nobody took it yet: the channel alone
    await acknowledge(db, clock, incident_id, "U0BOB")
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert kinds(pager) == ["status_update", "status_update"]
    assert pager.reminders[-1][1].mention == ["U0BOB"]
    await resolve(db, clock, incident_id, user="alertmanager")
    await escalator.incident_resolved(incident_id)
    clock.advance(timedelta(hours=24))
    await escalator.run_due()
    assert kinds(pager)[-1] == "postmortem"
    assert pager.reminders[-1][1].mention == ["U0BOB"]


async def test_p3_gets_no_status_reminders_until_raised_to_p2(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(severity="P3")
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.reminders == []
    await set_severity(db, clock, incident_id, "P2")
    await escalator.severity_changed(incident_id)  # an hour without an update: remind at once
    assert kinds(pager) == ["status_update"]
    await set_severity(db, clock, incident_id, "P4")
    await escalator.severity_changed(incident_id)
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert kinds(pager) == ["status_update"]


async def test_resolve_stops_status_reminders_and_chases_the_postmortem_once(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=10))
    await resolve(db, clock, incident_id, user="U0DAVE")
    await escalator.incident_resolved(incident_id)
    clock.advance(timedelta(hours=23, minutes=59))
    await escalator.run_due()
    assert pager.reminders == []
    clock.advance(timedelta(minutes=1))
    await escalator.run_due()
    assert kinds(pager) == ["postmortem"]
    assert pager.reminders[0][1].mention == ["U0ALICE"]  # the commander (the declarer by default)
    clock.advance(timedelta(days=3))
    await escalator.run_due()
    assert kinds(pager) == ["postmortem"]


async def test_resolve_handled_again_after_the_chase_does_not_chase_again(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start()
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id)
    clock.advance(timedelta(days=1))
    await escalator.run_due()
    assert kinds(pager) == ["postmortem"]
    # IncidentResolved again: the bot died before noting its handlers done, and the sweep redoes them.
    await escalator.incident_resolved(incident_id)
    clock.advance(timedelta(days=1))
    await escalator.run_due()
    assert kinds(pager) == ["postmortem"], "the post-mortem was chased twice"


async def test_a_finished_postmortem_is_not_chased(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    incident_id = await resolved(db, clock, escalator)
    clock.advance(timedelta(hours=3))
    await postmortem_event(db, clock, incident_id, {"finished": True})
    clock.advance(timedelta(days=1))
    await escalator.run_due()
    assert pager.reminders == []
    async with db.session() as session:
        (row,) = await reminder_rows.reminders(session, incident_id=incident_id, kind=ReminderKind.POSTMORTEM)
    assert row.cancelled_at is not None and row.cancel_reason == "post-mortem finished"


async def test_a_draft_postmortem_is_still_chased(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    incident_id = await resolved(db, clock, escalator)
    await postmortem_event(db, clock, incident_id, {"draft": True})
    clock.advance(timedelta(days=1))
    await escalator.run_due()
    assert kinds(pager) == ["postmortem"]


async def test_a_reminder_that_cannot_be_posted_is_retried(clock: FakeClock, pager: FakePager, start: Start) -> None:
    pager.fail_reminders = 1
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert pager.reminders == []
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert kinds(pager) == ["status_update"]


async def test_two_processes_send_a_reminder_once(
    db: Database, other_db: Database, clock: FakeClock, make_escalator: MakeEscalator, start: Start
) -> None:
    pager_a, pager_b = FakePager(), FakePager()
    a, incident_id = await start(pager=pager_a)
    b = make_escalator(pager=pager_b, db=other_db)
    clock.advance(timedelta(minutes=15))
    await asyncio.gather(a.run_due(), b.run_due(), a.run_due(), b.run_due())
    assert len(pager_a.reminders) + len(pager_b.reminders) == 1
    async with db.session() as session:
        rows = await reminder_rows.reminders(session, incident_id=incident_id, kind=ReminderKind.STATUS_UPDATE)
    assert [(r.seq, r.sent_at is not None) for r in rows] == [(0, True), (1, False)]


async def test_a_draft_shared_after_finishing_does_not_reopen_the_postmortem(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    """`/incident postmortem done`, then `/incident postmortem` shares a draft (`finished: false`) again."""
    escalator = make_escalator()
    incident_id = await resolved(db, clock, escalator)
    await postmortem_event(
        db, clock, incident_id, {"finished": True}, {"file_id": "F1", "finished": False}, {"finished": "yes"}
    )
    clock.advance(timedelta(days=1))
    await escalator.run_due()
    assert pager.reminders == []


async def test_only_finished_true_counts(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    incident_id = await resolved(db, clock, escalator)
    await postmortem_event(db, clock, incident_id, {"finished": "no"})
    clock.advance(timedelta(days=1))
    await escalator.run_due()
    assert kinds(pager) == ["postmortem"]


async def _crash_the_first_reminder_to_its_last_attempt(
    clock: FakeClock, pager: FakePager, start: Start
) -> tuple[Escalator, int]:
    """The first status reminder crashes on every attempt (a rendering bug), to its give-up."""

    async def broken(*, incident: object, reminder: object) -> None:
        raise RuntimeError("renderer bug")

    pager.post_reminder = broken  # type: ignore[assignment,method-assign]
    return await _first_reminder_to_its_give_up(clock, start)


async def _first_reminder_to_its_give_up(clock: FakeClock, start: Start) -> tuple[Escalator, int]:
    """The first status reminder falls due, then its two retries after their back-offs: the third attempt
    is the last."""
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    clock.advance(escalator.retry_backoff * 2)
    await escalator.run_due()  # the third attempt: given up
    return escalator, incident_id


async def test_a_reminder_that_keeps_crashing_is_given_up_after_the_last_attempt(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    _, incident_id = await _crash_the_first_reminder_to_its_last_attempt(clock, pager, start)
    async with db.session() as session:
        (first, *_) = await reminder_rows.reminders(session, incident_id=incident_id, kind=ReminderKind.STATUS_UPDATE)
    assert first.sent_at is not None and first.attempts == 3 and first.sent_to == []
    assert first.error == "gave up after 3 attempts: RuntimeError: renderer bug"


async def test_status_reminders_go_on_after_one_is_given_up(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """A reminder that kept crashing is given up; the incident is still silent, so the next one is planned."""
    working = pager.post_reminder
    escalator, incident_id = await _crash_the_first_reminder_to_its_last_attempt(clock, pager, start)
    pager.post_reminder = working  # type: ignore[method-assign]
    async with db.session() as session:
        rows = await reminder_rows.reminders(session, incident_id=incident_id, kind=ReminderKind.STATUS_UPDATE)
    assert [(r.seq, r.due_at.replace(tzinfo=None)) for r in rows if r.is_pending] == [
        (1, (clock.now() + timedelta(minutes=15)).replace(tzinfo=None))
    ]
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert kinds(pager) == ["status_update"]
    async with db.session() as session:
        rows = await reminder_rows.reminders(session, incident_id=incident_id, kind=ReminderKind.STATUS_UPDATE)
    assert [(r.seq, r.sent_at is not None) for r in rows] == [(0, True), (1, True), (2, False)]


async def test_a_reminder_that_could_not_be_posted_is_not_on_the_timeline_as_sent(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """Slack refused every attempt: the timeline (and the post-mortem read from it) says nobody was reminded."""
    pager.fail_reminders = 3
    _, incident_id = await _first_reminder_to_its_give_up(clock, start)
    assert pager.reminders == []
    async with db.session() as session:
        events = await timeline.events(session, incident_id=incident_id, kinds=["reminder"])
    assert [e.text for e in events] == [
        "Could not remind the channel about the status update (reminder could not be posted: channel_not_found)"
    ]
