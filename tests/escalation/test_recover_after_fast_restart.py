"""A plan a crash lost is made by the sweep: after a restart within seconds (what a supervisor or
Kubernetes does), or on another replica that stays up, the incident is still paged as its severity says."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.db import Database
from bot.escalation.flows import Escalator
from bot.escalation.pages import planning
from bot.escalation.scheduler import EscalationScheduler
from tests.escalation.conftest import FakePager, MakeEscalator, Start, config, declare, set_severity


async def up_for(escalator: Escalator, clock: FakeClock, *, minutes: int) -> None:
    """The bot started 20 s after the crash and up for `minutes`: its 30-second sweep runs on the injected clock."""
    clock.advance(timedelta(seconds=20))  # too young for the start's own run
    scheduler = EscalationScheduler(escalator)
    try:
        await scheduler.start()
        for _ in range(minutes * 2):
            clock.advance(timedelta(seconds=30))
            await scheduler.safety_sweep()
    finally:
        await scheduler.stop()


async def test_an_incident_lost_before_planning_is_paged_after_a_quick_restart(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    incident = await declare(db, clock)  # stored; the process died before IncidentDeclared was handled
    await up_for(make_escalator(config()), clock, minutes=20)
    assert pager.levels(incident.id) == [1, 2]


async def test_a_severity_raise_lost_to_a_crash_still_escalates(
    db: Database, clock: FakeClock, pager: FakePager, start: Start, make_escalator: MakeEscalator
) -> None:
    _, incident_id = await start(severity="P3")  # P3 pages level 1 only; it went out
    assert pager.levels(incident_id) == [1]
    await set_severity(db, clock, incident_id, "P1")  # `/incident sev P1` committed; the process died
    await up_for(make_escalator(config()), clock, minutes=40)  # past the team lead's 15 and the CTO's 30
    assert pager.levels(incident_id) == [1, 2, 3]


async def test_a_p1_lost_before_planning_is_reminded_with_nobody_to_page(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    """The default bot.yml pages nobody, but a P1 still gets its status reminder after a crash."""
    incident = await declare(db, clock)  # stored; the process died before IncidentDeclared was handled
    await up_for(make_escalator(BotConfig()), clock, minutes=16)
    assert [(i, r.kind) for i, r in pager.reminders] == [(incident.id, "status_update")]


async def test_a_p1_whose_pages_were_planned_but_not_its_reminder_is_still_reminded(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    incident = await declare(db, clock)
    async with db.session() as session:  # the pages committed; the process died before the reminder
        await planning.plan_pages(session, incident=incident, escalation=config().escalation, now=clock.now())
    await up_for(make_escalator(config()), clock, minutes=16)
    assert [(i, r.kind) for i, r in pager.reminders] == [(incident.id, "status_update")]
