"""The APScheduler wrapper on the wall clock, with second-long delays."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock, SystemClock
from bot.db import Database
from bot.escalation.flows import Escalator
from bot.escalation.pages import planning, queries
from bot.escalation.scheduler import WAKE_JOB, EscalationScheduler
from tests.escalation.conftest import DUE_READ, FakePager, MakeEscalator, Statements, config, declare

FAST = {
    "levels": [
        {"name": "On-call engineer", "after": "0s", "notify": ["U0ALICE"]},
        {"name": "Team lead", "after": "1s", "notify": ["U0LEAD"]},
        {"name": "CTO", "after": "2s", "notify": ["U0CTO"]},
    ]
}


async def wait_for(predicate: Callable[[], bool]) -> None:
    """Poll until true; fails after 10 s (generous: the delays under test are 1-2 s)."""
    for _ in range(200):
        if predicate():
            return
        await asyncio.sleep(0.05)
    raise AssertionError("condition not met within 10 s")


class FirstSweepHeld:
    """Stands in for the escalator's sweep: counts sweeps, and holds the first until `release`."""

    def __init__(self, escalator: Escalator) -> None:
        self.sweeps = 0
        self.release = asyncio.Event()
        self._real = escalator.run_due
        escalator.run_due = self  # type: ignore[method-assign,assignment]

    async def __call__(self) -> Any:
        self.sweeps += 1
        if self.sweeps == 1:
            await self.release.wait()
        return await self._real()


async def test_wake_ups_page_each_level_at_its_time(
    db: Database, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    clock = SystemClock()
    escalator = make_escalator(config(escalation=FAST), clock=clock)
    scheduler = EscalationScheduler(escalator, sweep_every=timedelta(hours=1))  # only the wake-ups
    await scheduler.start()
    try:
        incident = await declare(db, clock)  # type: ignore[arg-type]
        assert incident.id is not None
        started = time.monotonic()
        await escalator.incident_declared(incident.id)
        assert pager.levels() == [1]
        await wait_for(lambda: pager.levels() == [1, 2, 3])
        elapsed = time.monotonic() - started
        assert 1.5 <= elapsed < 8  # level 3 is due after 2 s
    finally:
        await scheduler.stop()  # after the sweep in progress has recorded what it sent
    assert not scheduler.running
    async with db.session() as session:
        rows = await queries.pages(session, incident_id=incident.id)
    assert [row.late for row in rows] == [False, False, False]
    sent = [row.sent_at - row.due_at for row in rows if row.sent_at]
    assert len(sent) == 3 and all(late >= timedelta(0) for late in sent), sent  # none early
    # Levels 2 and 3 went out on their wake-ups, not on the sweep (an hour away): within a few seconds of
    # their time, on a machine busy enough to make a wake-up a second late (seen with four test runs at
    # once on two cores). Level 1 is sent by the declaration itself: its delay measures the load only.
    assert all(late < timedelta(seconds=3) for late in sent[1:]), sent


async def test_the_sweep_has_read_a_page_before_it_falls_due(
    db: Database, pager: FakePager, make_escalator: MakeEscalator, statements: Statements, clock: FakeClock
) -> None:
    """The wake-up comes half a look-ahead early: at the due time the page starts from memory (sweep.py).

    The escalator's clock stands still until the test moves it: on the wall clock, with level 2 due 1 s
    after the declaration, a loaded machine took that long to plan and page level 1, and the page fell
    due before the wake-up's read. APScheduler still fires on the wall clock, after the delay armed."""
    look_ahead, after = timedelta(seconds=4), timedelta(seconds=3)
    levels = {
        "levels": [
            {"name": "On-call engineer", "after": "0s", "notify": ["U0ALICE"]},
            {"name": "Team lead", "after": f"{after.seconds}s", "notify": ["U0LEAD"]},
        ]
    }
    escalator = make_escalator(config(escalation=levels), look_ahead=look_ahead)
    scheduler = EscalationScheduler(escalator, sweep_every=timedelta(hours=1))
    await scheduler.start()
    try:
        incident = await declare(db, clock)
        assert incident.id is not None
        reads = statements.count(DUE_READ)
        before = datetime.now(UTC)
        await escalator.incident_declared(incident.id)  # pages level 1, arms the wake-up for level 2
        armed = datetime.now(UTC)
        wake = scheduler._scheduler.get_job(WAKE_JOB) if scheduler._scheduler else None
        assert wake is not None and pager.paged() == [(1, "U0ALICE")] and statements.count(DUE_READ) == reads
        early = after - look_ahead / 2  # level 2's due time, less half the look-ahead
        assert before + early <= wake.next_run_time <= armed + early, (before, wake.next_run_time, armed)

        await wait_for(lambda: statements.count(DUE_READ) > reads)  # the wake-up's sweep reads level 2...
        assert pager.paged() == [(1, "U0ALICE")]  # ...before it is due: the clock has not moved
        clock.advance(after)
        await wait_for(lambda: pager.levels() == [1, 2])
    finally:
        await scheduler.stop()
    async with db.session() as session:
        level_2 = (await queries.pages(session, incident_id=incident.id))[1]
    assert level_2.sent_at == level_2.due_at and not level_2.late


async def test_the_sweep_finds_rows_planned_by_another_process(
    db: Database, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    clock = SystemClock()
    watcher = make_escalator(config(escalation=FAST), clock=clock)
    scheduler = EscalationScheduler(watcher, sweep_every=timedelta(seconds=1))
    await scheduler.start()
    try:
        incident = await declare(db, clock)  # type: ignore[arg-type]
        assert incident.id is not None
        # Another replica plans the incident and dies before sending anything: no wake-up here.
        async with db.session() as session:
            await planning.plan_pages(session, incident=incident, escalation=watcher.config.escalation, now=clock.now())
        await wait_for(lambda: pager.levels() == [1, 2, 3])
    finally:
        await scheduler.stop()


async def test_earlier_wake_up_wins_and_later_one_is_ignored(make_escalator: MakeEscalator, clock: FakeClock) -> None:
    scheduler = EscalationScheduler(make_escalator(), sweep_every=timedelta(hours=1))
    await scheduler.start()
    try:
        scheduler.wake_at(clock.now() + timedelta(minutes=10))
        scheduler.wake_at(clock.now() + timedelta(minutes=20))
        assert scheduler.next_wake == clock.now() + timedelta(minutes=10)
        scheduler.wake_at(clock.now() + timedelta(minutes=5))
        assert scheduler.next_wake == clock.now() + timedelta(minutes=5)
        # A time in the past becomes "very soon", never a busy loop.
        scheduler.wake_at(clock.now() - timedelta(hours=1))
        assert scheduler.next_wake == clock.now() + scheduler.min_gap
    finally:
        await scheduler.stop()


async def test_a_failing_run_is_reported_and_does_not_stop_the_scheduler(make_escalator: MakeEscalator) -> None:
    escalator = make_escalator()

    async def broken() -> None:
        raise RuntimeError("database is down")

    escalator.run_due = broken  # type: ignore[method-assign,assignment]
    scheduler = EscalationScheduler(escalator, sweep_every=timedelta(hours=1))
    await scheduler.start()
    try:
        assert scheduler.last_error == "RuntimeError: database is down"
        assert scheduler.running
    finally:
        await scheduler.stop()


async def test_runs_requested_during_a_sweep_share_one_more_sweep(make_escalator: MakeEscalator) -> None:
    escalator = make_escalator()
    scheduler = EscalationScheduler(escalator, sweep_every=timedelta(hours=1))
    await scheduler.start()
    held = FirstSweepHeld(escalator)
    try:
        first = asyncio.ensure_future(scheduler.run())
        await wait_for(lambda: held.sweeps == 1)  # in progress
        waiting = [asyncio.ensure_future(scheduler.run()) for _ in range(5)]
        await asyncio.sleep(0.01)
        assert held.sweeps == 1 and not any(w.done() for w in waiting)  # they wait, and do not sweep alongside
        held.release.set()
        await asyncio.gather(first, *waiting)
        assert held.sweeps == 2  # one more sweep after the first, shared by the five requests
        await scheduler.run()
        assert held.sweeps == 3  # a request when nothing runs sweeps at once
    finally:
        await scheduler.stop()


async def test_a_wake_up_that_fires_during_a_sweep_is_served_by_one_more_sweep(
    make_escalator: MakeEscalator, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Not skipped by APScheduler with a warning (every storm logged those): run() shares it."""
    escalator = make_escalator()
    scheduler = EscalationScheduler(escalator, sweep_every=timedelta(hours=1))
    await scheduler.start()
    held = FirstSweepHeld(escalator)
    caplog.set_level(logging.WARNING, logger="apscheduler")
    try:
        scheduler.wake_at(clock.now() + timedelta(milliseconds=200))
        await wait_for(lambda: held.sweeps == 1)  # the wake-up's sweep, in progress
        clock.advance(timedelta(seconds=1))
        scheduler.wake_at(clock.now())  # something fell due meanwhile (armed for min_gap from now)
        await asyncio.sleep(0.6)  # its wake-up fires while the first sweep still runs
        assert held.sweeps == 1
        held.release.set()
        await wait_for(lambda: held.sweeps == 2)
    finally:
        await scheduler.stop()
    assert [r.getMessage() for r in caplog.records if r.name.startswith("apscheduler")] == []
