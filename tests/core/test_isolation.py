"""Isolation instead of priority (bot/db.py): what the writer queue and session turns used to buy.

The pager has its own engine, so its writes never wait for a connection behind the requests';
SQLite in WAL lets readers read while a write is open, and a second writer waits for the first in
SQLite's busy handler instead of failing.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from bot.db import Database
from bot.incidents import service
from bot.incidents.models import IncidentCreate
from bot.settings import normalise_database_url


@pytest.fixture
async def one_connection(database_url: str, db: Database) -> AsyncIterator[Database]:
    """The requests' engine with a single connection (a storm that exhausted the pool)."""
    small = Database(normalise_database_url(database_url), pool=(1, 0))
    yield small
    await small.dispose()


async def declare(db: Database, title: str) -> int:
    async with db.session() as session:
        incident = await service.create(
            session, data=IncidentCreate(title=title, declared_by="U0ALICE"), now=datetime.now(UTC)
        )
    return incident.id or 0


async def test_the_pagers_writes_do_not_wait_for_the_requests_pool(one_connection: Database) -> None:
    number = await declare(one_connection, "Checkout is down")
    holding, release = asyncio.Event(), asyncio.Event()

    async def a_long_request() -> None:
        async with one_connection.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))  # holds the requests' only connection
            holding.set()
            await release.wait()

    request = asyncio.create_task(a_long_request())
    await holding.wait()
    try:
        with pytest.raises(TimeoutError):  # another request waits for the pool...
            await asyncio.wait_for(declare(one_connection, "Search is slow"), 0.5)
        async with one_connection.for_pager().engine.begin() as conn:  # ...the pager does not
            update = text("UPDATE incidents SET acknowledged_by = 'U0LEAD' WHERE id = :id")
            await asyncio.wait_for(conn.execute(update, {"id": number}), 5)
    finally:
        release.set()
        await request
    async with one_connection.session() as session:
        assert (await service.get(session, number=number)).acknowledged_by == "U0LEAD"


async def test_a_reader_is_not_blocked_by_an_open_write(db: Database) -> None:
    number = await declare(db, "Checkout is down")
    async with db.engine.connect() as writer:
        await writer.execute(text("UPDATE incidents SET title = 'renamed' WHERE id = :id"), {"id": number})
        # The write is open (not committed): a reader gets the committed row at once.
        async with db.session() as session:
            incident = await asyncio.wait_for(service.get(session, number=number), 2)
        assert incident.title == "Checkout is down"
        await writer.commit()


async def test_sqlite_a_second_writer_waits_for_the_first_instead_of_failing(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only: PostgreSQL writes different rows at once")
    await declare(db, "Checkout is down")
    async with db.engine.connect() as first:
        await first.execute(text("UPDATE incidents SET title = 'first' WHERE id = 1"))  # holds the write lock
        second = asyncio.create_task(declare(db, "Search is slow"))
        await asyncio.sleep(0.3)
        assert not second.done(), "the second writer should be waiting in SQLite's busy handler"
        await first.commit()
    assert await asyncio.wait_for(second, 10) == 2


async def test_sqlite_runs_in_wal_with_a_busy_timeout(db: Database) -> None:
    if not db.is_sqlite:
        pytest.skip("SQLite only")
    for engine in (db.engine, db.for_pager().engine):
        async with engine.connect() as conn:
            assert (await conn.execute(text("PRAGMA journal_mode"))).scalar() == "wal"
            assert (await conn.execute(text("PRAGMA busy_timeout"))).scalar() == 30000


async def test_a_connection_handed_back_inside_a_transaction_is_rolled_back(db: Database) -> None:
    """The pool's reset (on SQLite, `_sqlite_reset`: only what is still open) runs when nothing else did."""
    number = await declare(db, "Checkout is down")
    async with db.engine.connect() as conn:
        raw = await conn.get_raw_connection()  # writes behind SQLAlchemy's back: it ends no transaction
        await raw.driver_connection.execute(f"UPDATE incidents SET title = 'lost' WHERE id = {number}")  # type: ignore[union-attr]
    async with db.engine.connect() as conn:
        assert (await conn.execute(text(f"SELECT title FROM incidents WHERE id = {number}"))).scalar() == (
            "Checkout is down"
        )
    # The write lock went with the rollback: the next writer does not wait out the busy timeout.
    await asyncio.wait_for(declare(db, "Search is slow"), 5)
