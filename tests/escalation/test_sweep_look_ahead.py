"""A sweep reads the pages falling due within its look-ahead and starts each from memory when it is
due (`bot.escalation.sweep`): no read of due rows stands between a page's due time and its claim,
which in a storm of declarations is a wait on a busy event loop and pool
(benchmarks/page_lateness.py). The claim still decides: a remembered page stopped meanwhile is
not sent, and a page planned inside the window read is read and sent.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation import sweep as sweep_module
from bot.escalation.flows import Escalator
from bot.escalation.sweep import RunReport
from tests.escalation.conftest import DUE_READ, FakePager, MakeEscalator, Statements, config, declare
from tests.escalation.page_writes_support import LATER_LEVELS

Dmed = defaultdict[int, asyncio.Event]
LOOK_AHEAD = timedelta(seconds=30)  # far more than a test takes, so the sweep never gives up on a page


async def two_incidents_ten_seconds_apart(db: Database, clock: FakeClock, escalator: Escalator) -> list[int]:
    """Two incidents whose level 1 falls due 10 s apart; the clock is at the first one's due time."""
    ids = []
    for n in range(2):
        incident = await declare(db, clock, channel_id=f"C0INC{n}")
        assert incident.id is not None
        await escalator.incident_declared(incident.id)
        ids.append(incident.id)
        clock.advance(timedelta(seconds=10))
    clock.advance(timedelta(minutes=5) - timedelta(seconds=20))
    return ids


def paged(pager: FakePager) -> list[int]:
    """The incidents paged, in the order their DMs went out."""
    return [incident for _user, incident, _page in pager.dms]


@pytest.fixture
def dmed(pager: FakePager) -> Dmed:
    """Per incident, set once a page's DM to it went out."""
    events: Dmed = defaultdict(asyncio.Event)
    dm_page = pager.dm_page

    async def dm(**kwargs: Any) -> None:
        await dm_page(**kwargs)
        events[kwargs["incident"].id].set()

    pager.dm_page = dm  # type: ignore[method-assign]
    return events


async def first_page_out(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, dmed: Dmed
) -> tuple[Escalator, int, int, asyncio.Task[RunReport]]:
    """Two incidents 10 s apart, a sweep running, and the first one's page out."""
    escalator = make_escalator(config(escalation=LATER_LEVELS), look_ahead=LOOK_AHEAD)
    first, second = await two_incidents_ten_seconds_apart(db, clock, escalator)
    sweep = asyncio.create_task(escalator.run_due())
    await asyncio.wait_for(dmed[first].wait(), 10)
    return escalator, first, second, sweep


async def test_a_page_due_within_the_look_ahead_starts_from_memory_without_reading_again(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: FakePager, statements: Statements, dmed: Dmed
) -> None:
    escalator, first, second, sweep = await first_page_out(db, clock, make_escalator, dmed)
    reads = statements.count(DUE_READ)

    clock.advance(timedelta(seconds=10))
    report = await asyncio.wait_for(sweep, 10)

    assert report.pages == 2  # the sweep that sent the first page also sent the second, at its due time
    assert paged(pager) == [first, second]
    assert reads == 1 and statements.count(DUE_READ) == 1  # read once, for both


async def test_a_remembered_page_whose_incident_was_resolved_meanwhile_is_not_sent(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: FakePager, dmed: Dmed
) -> None:
    escalator, first, second, sweep = await first_page_out(db, clock, make_escalator, dmed)

    await escalator.incident_resolved(second, actor="U0LEAD")
    clock.advance(timedelta(seconds=10))
    report = await asyncio.wait_for(sweep, 10)

    assert report.pages == 1
    assert paged(pager) == [first]
    assert all(page.cancelled_at is not None for page in await escalator.pages(second))


async def test_a_page_planned_inside_the_window_read_is_read_and_sent_by_the_same_sweep(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: FakePager, statements: Statements, dmed: Dmed
) -> None:
    escalator, first, second, sweep = await first_page_out(db, clock, make_escalator, dmed)

    now = clock.now()
    clock.advance(timedelta(seconds=5) - timedelta(minutes=5))  # declared so that level 1 is due in 5 s
    late = await declare(db, clock, channel_id="C0LATE")
    clock.set(now)
    assert late.id is not None
    await escalator.incident_declared(late.id)  # plans it, and tells the sweep in progress
    clock.advance(timedelta(seconds=5))
    await asyncio.wait_for(dmed[late.id].wait(), 10)
    clock.advance(timedelta(seconds=5))
    report = await asyncio.wait_for(sweep, 10)

    assert report.pages == 3
    assert paged(pager) == [first, late.id, second]
    assert statements.count(DUE_READ) == 2  # the first read, and one for the page planned inside it


async def test_a_page_falling_due_while_the_sweep_reads_again_starts_without_waiting_for_the_read(
    db: Database,
    clock: FakeClock,
    make_escalator: MakeEscalator,
    pager: FakePager,
    dmed: Dmed,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Under load a read takes hundreds of ms; the pages the sweep remembers go out meanwhile."""
    reads, gate = [], asyncio.Event()
    real_read = sweep_module.pages_free_by

    async def second_read_held(session: Any, **kwargs: Any) -> Any:
        reads.append(kwargs)
        if len(reads) == 2:
            await gate.wait()
        return await real_read(session, **kwargs)

    monkeypatch.setattr(sweep_module, "pages_free_by", second_read_held)
    _, first, second, sweep = await first_page_out(db, clock, make_escalator, dmed)

    clock.advance(timedelta(seconds=20))  # the second page is due, and so is a fresh read (half the window)
    await asyncio.wait_for(dmed[second].wait(), 10)
    assert len(reads) == 2 and not gate.is_set()  # sent while the read was still under way
    gate.set()
    report = await asyncio.wait_for(sweep, 10)

    assert report.pages == 2 and paged(pager) == [first, second]


async def test_a_sweep_whose_clock_never_reaches_a_remembered_page_ends_after_the_look_ahead(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: FakePager, statements: Statements
) -> None:
    escalator = make_escalator(config(escalation=LATER_LEVELS), look_ahead=timedelta(milliseconds=300))
    incident = await declare(db, clock)
    assert incident.id is not None
    await escalator.incident_declared(incident.id)
    clock.advance(timedelta(minutes=5) - timedelta(milliseconds=100))  # due in 0.1 s, and the clock stands still

    report = await asyncio.wait_for(escalator.run_due(), 5)

    assert report.pages == 0 and paged(pager) == []
    assert statements.count(DUE_READ) == 1  # it waited for the page, it did not poll for it


async def test_a_backlog_larger_than_one_read_is_sent_in_full_and_once(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: FakePager, statements: Statements
) -> None:
    escalator = make_escalator(config(escalation=LATER_LEVELS), concurrency=1)  # reads 4 rows at a time
    for n in range(9):
        incident = await declare(db, clock, channel_id=f"C0INC{n}")
        assert incident.id is not None
        await escalator.incident_declared(incident.id)
    clock.advance(timedelta(minutes=5))

    report = await escalator.run_due()

    assert report.pages == 9
    assert sorted(paged(pager)) == list(range(1, 10))
    assert 3 <= statements.count(DUE_READ) <= 10  # 4 rows a read: read again as pages finished, not in a loop
