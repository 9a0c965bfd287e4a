"""A plan a crash lost is made by the sweep: a restart within seconds (what a supervisor or Kubernetes
does) or another replica that stays up still pages the incident."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.scheduler import EscalationScheduler
from tests.escalation.conftest import FakePager, MakeEscalator, config, declare


async def run_for(scheduler: EscalationScheduler, clock: FakeClock, *, minutes: int) -> None:
    """The bot up for `minutes`: its 30-second sweep runs on the injected clock."""
    for _ in range(minutes * 2):
        clock.advance(timedelta(seconds=30))
        await scheduler.safety_sweep()


async def test_an_incident_lost_before_planning_is_paged_after_a_quick_restart(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    incident = await declare(db, clock)  # stored; the process died before IncidentDeclared was handled
    clock.advance(timedelta(seconds=20))  # restarted 20 s later: too young for the start's own run
    scheduler = EscalationScheduler(make_escalator(config()))
    try:
        await scheduler.start()
        await run_for(scheduler, clock, minutes=20)
    finally:
        await scheduler.stop()
    assert pager.levels(incident.id) == [1, 2]
