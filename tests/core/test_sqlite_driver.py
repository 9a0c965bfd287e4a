"""SQLite statements make one trip to aiosqlite's thread, and still answer as the stock driver does.

A writer holds SQLite's one write turn for every trip of its transaction, and each trip waits for
the event loop to come round: the stock cursor's four trips per statement (cursor, execute,
fetch, close) capped the writes a second in a storm (benchmarks/page_lateness.py).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from bot.db import Database


@pytest.fixture
async def conn(db: Database) -> AsyncIterator[AsyncConnection]:
    if not db.is_sqlite:
        pytest.skip("SQLite only: the PostgreSQL driver is psycopg's own")
    async with db.engine.connect() as connection:
        await connection.execute(text("CREATE TEMP TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)"))
        yield connection


async def trips(conn: AsyncConnection) -> list[str]:
    """Records every function sent to this connection's aiosqlite thread from now on."""
    raw = (await conn.get_raw_connection()).dbapi_connection
    assert raw is not None
    worker: Any = raw._connection  # type: ignore[attr-defined]  # the aiosqlite.Connection
    sent: list[str] = []
    real = worker._execute

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        sent.append(getattr(fn, "__name__", repr(fn)))
        return await real(fn, *args, **kwargs)

    worker._execute = counted
    return sent


async def test_a_query_with_rows_is_one_trip(conn: AsyncConnection) -> None:
    await conn.execute(text("INSERT INTO t (name) VALUES ('a'), ('b')"))
    sent = await trips(conn)
    rows = (await conn.execute(text("SELECT id, name FROM t ORDER BY id"))).all()
    assert [tuple(r) for r in rows] == [(1, "a"), (2, "b")]
    assert len(sent) == 1


async def test_a_write_answers_its_rowcount_lastrowid_and_returning_rows(conn: AsyncConnection) -> None:
    sent = await trips(conn)
    inserted = await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
    assert inserted.lastrowid == 1
    await conn.execute(text("INSERT INTO t (name) VALUES (:n)"), [{"n": "b"}, {"n": "c"}])  # executemany
    updated = await conn.execute(text("UPDATE t SET name = name || '!' WHERE id > 1"))
    assert updated.rowcount == 2
    returned = await conn.execute(text("UPDATE t SET name = 'z' WHERE id = 3 RETURNING id, name"))
    assert [tuple(r) for r in returned.all()] == [(3, "z")]
    assert len(sent) == 4  # one trip per statement


async def test_errors_come_back_as_the_stock_drivers(conn: AsyncConnection) -> None:
    await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
    with pytest.raises(IntegrityError):
        await conn.execute(text("INSERT INTO t (name) VALUES ('a')"))
