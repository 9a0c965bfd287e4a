"""SQLite's writers take turns in the process: a page's DMs first, work that can wait last.

Without the queue, concurrent writers wait in SQLite's busy handler, which naps between tries and
serves no one in particular (benchmarks/page_lateness.py: seconds of lateness in a storm).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from bot.config import Severity
from bot.db import WRITE_PRIORITY, Database, Write, WriteQueue
from bot.incidents import service
from bot.incidents.models import IncidentCreate
from tests.core.waits import take_turn, waiting

NOW = datetime(2026, 11, 22, 9, 0, tzinfo=UTC)


# --- the queue ----------------------------------------------------------------------------


async def test_writers_go_by_priority_then_in_order_of_arrival() -> None:
    queue = WriteQueue()
    await queue.acquire()  # someone is writing
    order: list[str] = []

    def writer(name: str, priority: Write = Write.NORMAL) -> asyncio.Task[None]:
        return asyncio.create_task(take_turn(queue, order, name, priority=priority))

    tasks = [writer("setup 1", Write.LATER)]
    await waiting(queue, 1)
    tasks.append(writer("declare 1"))
    await waiting(queue, 2)
    tasks.append(writer("setup 2", Write.LATER))
    await waiting(queue, 3)
    tasks.append(writer("declare 2"))
    await waiting(queue, 4)
    tasks.append(writer("page", Write.URGENT))
    await waiting(queue, 5)
    queue.release()
    await asyncio.gather(*tasks)
    assert order == ["page", "declare 1", "declare 2", "setup 1", "setup 2"]
    await asyncio.wait_for(queue.acquire(), 0.1)  # free again


async def test_within_a_priority_the_oldest_requests_writes_go_first() -> None:
    """A storm's declarations finish in turn, instead of all advancing together and finishing late."""
    queue = WriteQueue()
    await queue.acquire()  # someone is writing
    order: list[str] = []

    arrived = time.monotonic()
    tasks = [asyncio.create_task(take_turn(queue, order, "second request's first write", since=arrived - 1.0))]
    await waiting(queue, 1)
    tasks.append(asyncio.create_task(take_turn(queue, order, "unstamped (a timer's)")))
    await waiting(queue, 2)
    tasks.append(asyncio.create_task(take_turn(queue, order, "first request's third write", since=arrived - 2.0)))
    await waiting(queue, 3)
    tasks.append(
        asyncio.create_task(
            take_turn(queue, order, "an old request's setup", priority=Write.LATER, since=arrived - 9.0)
        )
    )
    await waiting(queue, 4)
    queue.release()
    await asyncio.gather(*tasks)
    assert order == [
        "first request's third write",
        "second request's first write",
        "unstamped (a timer's)",
        "an old request's setup",  # priority still comes first
    ]


async def test_a_turn_that_never_comes_is_an_error_and_the_queue_goes_on() -> None:
    queue = WriteQueue(timeout=0.05)
    await queue.acquire()
    with pytest.raises(TimeoutError):
        await queue.acquire()
    late = asyncio.create_task(queue.acquire())
    await waiting(queue, 2)  # the timed-out waiter is still in the heap, cancelled
    queue.release()
    await asyncio.wait_for(late, 1)  # the turn skipped the one that gave up


async def test_a_cancelled_writer_gives_up_its_place() -> None:
    queue = WriteQueue()
    await queue.acquire()
    gone = asyncio.create_task(queue.acquire())
    await waiting(queue, 1)
    gone.cancel()
    with pytest.raises(asyncio.CancelledError):
        await gone
    queue.release()
    await asyncio.wait_for(queue.acquire(), 0.1)  # nobody holds it: the cancelled one did not


# --- through SQLAlchemy sessions ------------------------------------------------------------


@pytest.fixture
def sqlite(db: Database) -> Database:
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL locks rows, not the whole database")
    return db


async def declare(db: Database, title: str, order: list[str], *, priority: Write = Write.NORMAL) -> None:
    WRITE_PRIORITY.set(priority)
    async with db.session() as session:
        await service.create(session, data=IncidentCreate(title=title, severity=Severity.P2, declared_by="U1"), now=NOW)
    order.append(title)


async def test_sessions_wait_for_the_writer_and_go_in_order_of_priority(sqlite: Database) -> None:
    order: list[str] = []
    async with sqlite.session() as holder:
        await holder.exec(text("UPDATE incidents SET title = title"))  # type: ignore[call-overload]
        # `holder` has written and not committed: it has the turn, the others queue behind it.
        later = asyncio.create_task(declare(sqlite, "setup", order, priority=Write.LATER))
        await waiting(sqlite.writers, 1)
        normal = asyncio.create_task(declare(sqlite, "declare", order))
        await waiting(sqlite.writers, 2)
        urgent = asyncio.create_task(declare(sqlite, "page", order, priority=Write.URGENT))
        await waiting(sqlite.writers, 3)
        await holder.commit()
    await asyncio.wait_for(asyncio.gather(later, normal, urgent), 5)
    assert order == ["page", "declare", "setup"]
    async with sqlite.session() as session:
        titles = [i.title for i in await service.list_since(session, since=NOW)]
    assert titles == ["page", "declare", "setup"]


async def test_a_failed_transaction_gives_the_turn_back(sqlite: Database) -> None:
    order: list[str] = []
    with pytest.raises(RuntimeError):
        async with sqlite.session() as session:
            await session.exec(text("UPDATE incidents SET title = title"))  # type: ignore[call-overload]
            raise RuntimeError("the database call after it failed")
    await asyncio.wait_for(declare(sqlite, "next", order), 2)
    assert order == ["next"]


async def test_a_writer_cancelled_just_as_its_turn_came_passes_the_turn_on() -> None:
    queue = WriteQueue()
    await queue.acquire()
    cancelled = asyncio.create_task(queue.acquire())
    await waiting(queue, 1)
    after = asyncio.create_task(queue.acquire())
    await waiting(queue, 2)
    queue.release()  # the turn is `cancelled`'s now, but it has not run yet
    cancelled.cancel()
    try:
        await cancelled
    except asyncio.CancelledError:
        pass  # it gave the turn on
    else:
        queue.release()  # the wait swallowed the cancellation (Python 3.11): it holds the turn like any writer
    await asyncio.wait_for(after, 0.5)  # either way, no turn is lost


async def test_a_write_whose_turn_never_comes_is_a_database_error(
    sqlite: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Callers that answer "database unavailable" catch SQLAlchemy's errors (`listeners/replay.py`)."""
    monkeypatch.setattr(sqlite.writers, "timeout", 0.05)
    order: list[str] = []
    async with sqlite.session() as holder:
        await holder.exec(text("UPDATE incidents SET title = title"))  # type: ignore[call-overload]
        with pytest.raises(SQLAlchemyError, match="no turn to write within 0.05 s"):
            await declare(sqlite, "starved", order)
    assert order == []
    await asyncio.wait_for(declare(sqlite, "next", order), 2)  # the queue goes on
    assert order == ["next"]
