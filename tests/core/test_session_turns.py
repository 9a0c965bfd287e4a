"""PostgreSQL: at most `Database.SESSIONS` sessions at once, handed out by who the work is for.

In arrival order, a storm's declarations advanced in step through the connection pool and all
finished at the storm's end, their pages planned late (benchmarks/page_lateness.py: level 1 p50
about twice level 2's, p99 up to 1.4 s). The session turns serve a page's writes first, then the
oldest request's.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest
from sqlalchemy import exc, text

from bot.db import WRITE_PRIORITY, WRITE_SINCE, Database, Turns, Write
from tests.core.waits import take_turn, waiting

# --- the turns -----------------------------------------------------------------------------


async def test_up_to_capacity_hold_at_once_and_the_rest_go_by_priority_then_oldest_request() -> None:
    turns = Turns(capacity=2)
    await turns.acquire()
    await asyncio.wait_for(turns.acquire(), 0.1)  # a second at once
    order: list[str] = []

    arrived = time.monotonic()
    tasks = [asyncio.create_task(take_turn(turns, order, "a new request", since=arrived))]
    await waiting(turns, 1)
    tasks.append(asyncio.create_task(take_turn(turns, order, "a setup", priority=Write.LATER, since=arrived - 5)))
    await waiting(turns, 2)
    tasks.append(asyncio.create_task(take_turn(turns, order, "an old request", since=arrived - 2)))
    await waiting(turns, 3)
    tasks.append(asyncio.create_task(take_turn(turns, order, "a page", priority=Write.URGENT)))
    await waiting(turns, 4)
    turns.release()  # one turn frees: the waiters go through it one by one
    await asyncio.wait_for(asyncio.gather(*tasks), 1)
    assert order == ["a page", "an old request", "a new request", "a setup"]
    await asyncio.wait_for(turns.acquire(), 0.1)  # one turn is still held, one is free again
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(turns.acquire(), 0.05)


# --- through Database.session() on PostgreSQL ---------------------------------------------


@pytest.fixture
def postgres(db: Database) -> Database:
    if db.is_sqlite:
        pytest.skip("PostgreSQL only: SQLite's writers take turns instead (test_write_queue.py)")
    return db


@pytest.fixture
async def all_turns_held(postgres: Database) -> AsyncIterator[Callable[[], None]]:
    """Every session turn held by a task with an open session; each call of the result lets one go."""
    gates = [asyncio.Event() for _ in range(Database.SESSIONS)]
    opened = 0

    async def hold(gate: asyncio.Event) -> None:
        nonlocal opened
        async with postgres.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            opened += 1
            await gate.wait()

    holders = [asyncio.create_task(hold(gate)) for gate in gates]
    for _ in range(400):
        if opened == Database.SESSIONS:
            break
        await asyncio.sleep(0.005)
    assert opened == Database.SESSIONS
    left = iter(gates)
    try:
        yield lambda: next(left).set()
    finally:
        for gate in gates:
            gate.set()
        await asyncio.wait_for(asyncio.gather(*holders), 5)


async def test_sessions_beyond_the_limit_wait_and_go_by_priority_then_oldest_request(
    postgres: Database, all_turns_held: Callable[[], None]
) -> None:
    assert postgres.turns is not None
    order: list[str] = []
    hold = asyncio.Event()

    async def write(name: str, priority: Write, since: float | None) -> None:
        WRITE_PRIORITY.set(priority)
        WRITE_SINCE.set(since)
        async with postgres.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            order.append(name)
            await hold.wait()  # keeps its turn, so the next one goes only when a holder lets go

    arrived = time.monotonic()
    tasks = [asyncio.create_task(write("a new request's write", Write.NORMAL, arrived))]
    await waiting(postgres.turns, 1)
    tasks.append(asyncio.create_task(write("an old request's write", Write.NORMAL, arrived - 3)))
    await waiting(postgres.turns, 2)
    tasks.append(asyncio.create_task(write("a page's claim", Write.URGENT, None)))
    await waiting(postgres.turns, 3)
    await asyncio.sleep(0.05)
    assert order == []  # nobody got past the held turns
    for went in range(1, 4):
        all_turns_held()  # one turn frees
        for _ in range(400):
            if len(order) == went:
                break
            await asyncio.sleep(0.005)
    hold.set()
    await asyncio.wait_for(asyncio.gather(*tasks), 5)
    assert order == ["a page's claim", "an old request's write", "a new request's write"]


async def test_a_turn_that_never_comes_is_the_error_the_pool_gave(
    postgres: Database, all_turns_held: Callable[[], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """SQLAlchemy's own pool timeout: what callers already treat as "database unavailable"."""
    assert postgres.turns is not None
    monkeypatch.setattr(postgres.turns, "timeout", 0.05)
    with pytest.raises(exc.TimeoutError, match="no database session free within 0.05 s"):
        async with postgres.session():
            pass
    assert postgres.turns._waiting == [] or all(f.cancelled() for *_, f in postgres.turns._waiting)


async def test_a_session_opened_while_one_is_held_rides_on_its_turn(postgres: Database) -> None:
    """Nesting, in the task or in a task it spawns meanwhile, never waits on itself."""
    assert postgres.turns is not None
    seen: list[int] = []

    async def nested() -> None:
        async with postgres.session() as inner:
            seen.append((await inner.exec(text("SELECT 2"))).one()[0])  # type: ignore[call-overload]

    async with postgres.session() as outer:
        await outer.exec(text("SELECT 1"))  # type: ignore[call-overload]
        taken = 0  # every other turn, so that a session needing one of its own would wait
        while postgres.turns._held < postgres.turns.capacity:
            await postgres.turns.acquire()
            taken += 1
        try:
            await asyncio.wait_for(nested(), 2)
            await asyncio.wait_for(asyncio.create_task(nested()), 2)  # spawned while the turn is held
        finally:
            for _ in range(taken):
                postgres.turns.release()
    assert seen == [2, 2]


async def test_a_task_spawned_under_a_turn_takes_its_own_once_that_turn_is_given_back(postgres: Database) -> None:
    assert postgres.turns is not None
    release = asyncio.Event()
    inside: list[str] = []

    async def later_work() -> None:
        await release.wait()
        async with postgres.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            inside.append("in")
            await asyncio.sleep(0.05)

    async with postgres.session() as session:
        await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
        task = asyncio.create_task(later_work())
    held_before = postgres.turns._held
    release.set()
    for _ in range(400):
        if inside:
            break
        await asyncio.sleep(0.005)
    assert inside == ["in"]
    assert postgres.turns._held == held_before + 1  # it counts against the limit like anyone
    await asyncio.wait_for(task, 2)
    assert postgres.turns._held == held_before


async def test_a_session_that_fails_or_is_cancelled_gives_its_turn_back(postgres: Database) -> None:
    assert postgres.turns is not None
    with pytest.raises(RuntimeError):
        async with postgres.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            raise RuntimeError("the call after it failed")
    assert postgres.turns._held == 0

    started = asyncio.Event()

    async def hang() -> None:
        async with postgres.session() as session:
            await session.exec(text("SELECT 1"))  # type: ignore[call-overload]
            started.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(hang())
    await asyncio.wait_for(started.wait(), 2)
    assert postgres.turns._held == 1
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert postgres.turns._held == 0


def test_sqlite_has_no_session_turns(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only")
    assert db.turns is None  # its writers queue instead; readers never wait on each other
