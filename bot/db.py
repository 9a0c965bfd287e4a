"""Database engine, sessions and start-up migration.

SQLite (aiosqlite) by default, PostgreSQL (psycopg 3, async) in production. All timestamps are
stored as UTC and come back timezone-aware on both engines.

Migration story: `Database.migrate()` runs at start-up. It creates missing tables and indexes
(`create_all`), then applies the numbered steps in `MIGRATIONS` that are newer than the version
recorded in `schema_version`. A release that changes an existing table adds a step there; steps
are plain SQL that both engines accept and are never edited once released.
"""

from __future__ import annotations

import asyncio
import collections
import heapq
import importlib
import itertools
import logging
import sqlite3
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any

import aiosqlite
from sqlalchemy import DateTime, event, text
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite.aiosqlite import (
    AsyncAdapt_aiosqlite_connection,
    AsyncAdapt_aiosqlite_cursor,
    AsyncAdapt_aiosqlite_dbapi,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.types import TypeDecorator
from sqlalchemy.util import EMPTY_DICT, await_
from sqlmodel import SQLModel
from sqlmodel.ext.asyncio.session import AsyncSession

log = logging.getLogger(__name__)

# Every module that defines tables; imported before create_all so the metadata is complete.
MODEL_MODULES = [
    "bot.incidents.models",
    "bot.timeline.models",
    "bot.escalation.models",
    "bot.playbooks.models",
    "bot.ops.models",
    "bot.alerts.models",
    "bot.archive.models",
    "bot.postmortem.models",
    "bot.statuspage.models",
]

# (version, description, SQL statements). Append only.
MIGRATIONS: list[tuple[int, str, list[str]]] = [
    (1, "private incidents", ["ALTER TABLE incidents ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE"]),
    (2, "impact start", ["ALTER TABLE incidents ADD COLUMN impact_started_at TIMESTAMP WITH TIME ZONE"]),
    (
        3,
        "follow-up issues",
        [
            "ALTER TABLE action_items ADD COLUMN issue_url VARCHAR(500)",
            "ALTER TABLE action_items ADD COLUMN issue_key VARCHAR(200)",
            "ALTER TABLE action_items ADD COLUMN issue_checked_at TIMESTAMP WITH TIME ZONE",
            "ALTER TABLE action_items ADD COLUMN issue_claimed_at TIMESTAMP WITH TIME ZONE",
        ],
    ),
    (4, "alert storm counts", ["ALTER TABLE alert_groups ADD COLUMN firing_total INTEGER NOT NULL DEFAULT 0"]),
]


class UTCDateTime(TypeDecorator[datetime]):
    """Aware UTC in, aware UTC out, whatever the engine keeps."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; use clock.now()")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def import_models() -> None:
    for name in MODEL_MODULES:
        importlib.import_module(name)


class Database:
    """Owns the engine; hands out short-lived sessions.

    On PostgreSQL at most `SESSIONS` sessions are open at once, and the rest wait their turn by
    who the work is for (`Turns`), not in the pool's order of arrival. In a storm of declarations
    every request's sessions queued behind everyone else's, so all of them advanced in step and
    the first incidents' pages were planned late; now a page's writes go first, then the oldest
    request's. A session opened while its task (or the task that spawned it) holds a turn rides on
    that turn, so nesting never waits on itself.
    """

    SESSIONS = 10

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        kwargs: dict[str, Any] = {"echo": echo}
        if url.startswith("sqlite"):
            kwargs["connect_args"] = {"timeout": 30}
            kwargs["pool_size"], kwargs["max_overflow"] = 10, 40
            kwargs["module"] = _OneTripDriver(aiosqlite, sqlite3)
        else:
            kwargs["pool_pre_ping"] = True
            # Room above the session turns for a session opened while another is held.
            kwargs["pool_size"], kwargs["max_overflow"] = 5, self.SESSIONS
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        self.turns: Turns | None = None
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            self.writers = WriteQueue()
            self.writers.install(self.engine)
        else:
            self.turns = Turns(capacity=self.SESSIONS)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        held = _TURN.get()
        if self.turns is None or (held is not None and held.held):
            async with self.sessions() as session:  # SQLite's writers queue; a held turn covers this one
                yield session
            return
        try:
            await self.turns.acquire()
        except TimeoutError:  # what the pool raised when it had no connection: callers handle it as such
            raise sa_exc.TimeoutError(f"no database session free within {self.turns.timeout:g} s") from None
        turn = _Turn()
        token = _TURN.set(turn)
        try:
            async with self.sessions() as session:
                yield session
        finally:
            turn.held = False
            _TURN.reset(token)
            self.turns.release()

    async def migrate(self) -> None:
        import_models()
        async with self.engine.begin() as conn:
            await conn.run_sync(SQLModel.metadata.create_all)
            await conn.execute(text("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL PRIMARY KEY)"))
            current = (await conn.execute(text("SELECT MAX(version) FROM schema_version"))).scalar()
            if current is None:
                # A fresh database already has the newest shape from create_all.
                latest = MIGRATIONS[-1][0] if MIGRATIONS else 0
                await conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": latest})
                return
            for version, description, statements in MIGRATIONS:
                if version <= current:
                    continue
                log.info("applying migration %s: %s", version, description)
                for statement in statements:
                    await conn.execute(text(statement))
                await conn.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        await self.engine.dispose()


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


class Write(IntEnum):
    """Who goes first in SQLite's writer queue (lower first; in order of arrival within one)."""

    URGENT = 0  # a page's DMs wait on it
    NORMAL = 1  # requests, declarations, planning pages
    LATER = 2  # work that can wait: channel setups, a page's mention once its DMs are out


# Set by `bot.tasks.PagesFirst` around pages' DMs (URGENT) and work that can wait (LATER).
WRITE_PRIORITY: ContextVar[Write] = ContextVar("write_priority", default=Write.NORMAL)
# When the request a write serves arrived (`time.monotonic()`; set by the front door, inherited by
# the work the request spawns, such as planning its pages). Within a priority the oldest request
# writes first; unset, a write counts from when it asks for its turn.
WRITE_SINCE: ContextVar[float | None] = ContextVar("write_since", default=None)


class _Turn:
    """A session turn (PostgreSQL). Tasks spawned under it inherit it and ride on it while it is held."""

    def __init__(self) -> None:
        self.held = True


_TURN: ContextVar[_Turn | None] = ContextVar("session_turn", default=None)
# Statements that only read; anything else (a write, DDL, a SAVEPOINT, a WITH ... UPDATE) takes a turn.
_READS = ("SELECT", "PRAGMA", "EXPLAIN")


class Turns:
    """Up to `capacity` holders at once; the others wait, served by who the work is for.

    Waiters are served by `WRITE_PRIORITY` (a page's DMs, then requests, then work that can
    wait), then oldest request first (`WRITE_SINCE`), then in order of arrival, without polling.
    A turn that does not come within `timeout` is an error, as a pool's or SQLite's own wait.
    """

    def __init__(self, *, capacity: int = 1, timeout: float = 30.0) -> None:
        self.capacity = capacity
        self.timeout = timeout
        self._held = 0
        self._waiting: list[tuple[int, float, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    async def acquire(self) -> None:
        if self._held < self.capacity and not self._waiting:
            self._held += 1
            return
        turn = asyncio.get_running_loop().create_future()
        since = WRITE_SINCE.get()
        key = (int(WRITE_PRIORITY.get()), time.monotonic() if since is None else since, next(self._arrivals))
        heapq.heappush(self._waiting, (*key, turn))
        try:
            await asyncio.wait_for(asyncio.shield(turn), self.timeout)
        except BaseException:
            if turn.done() and not turn.cancelled():
                self.release()  # the turn came as we gave up: pass it on
            else:
                turn.cancel()  # skipped by release()
            raise

    def release(self) -> None:
        while self._waiting:
            *_, turn = heapq.heappop(self._waiting)
            if not turn.done():
                turn.set_result(None)  # the turn passes on; as many held as before
                return
        self._held -= 1


class WriteQueue(Turns):
    """SQLite: one writing transaction at a time, taking turns here rather than in SQLite.

    SQLite lets one connection write at a time. The others wait in its busy handler, which naps up
    to 100 ms between tries and serves no one in particular, so under a storm of declarations a
    page's three small writes waited seconds. Here a transaction waits for its turn (`Turns`, of
    one) before its first statement that is not a read. The turn ends when the connection goes
    back to the pool (after its commit or rollback).

    In a storm the queue is full for seconds (a turn lasts a few ms, and 100 declarations make
    ~1,000 writes), so the order decides: without it a declaration's own insert waited behind
    other incidents' channel setups, and its pages were late before they were planned. And in
    order of arrival alone, a declaration's seven writes each went to the back of the queue, so
    every declaration of a storm advanced in step and all finished at its end, the first ones
    long after their pages were due; oldest request first, they finish in turn.
    """

    def __init__(self, *, timeout: float = 30.0) -> None:
        super().__init__(capacity=1, timeout=timeout)

    def install(self, engine: AsyncEngine) -> None:
        event.listen(engine.sync_engine, "before_cursor_execute", self._before_execute)
        event.listen(engine.sync_engine, "checkin", self._checkin)

    def _before_execute(
        self, conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if conn.info.get("writing") or statement.lstrip()[:7].upper().startswith(_READS):
            return
        try:
            conn.connection.dbapi_connection.run_async(lambda _driver: self.acquire())
        except TimeoutError:
            # SQLite's own busy timeout was an OperationalError: callers treat it as the database unavailable.
            raise sa_exc.TimeoutError(f"the database had no turn to write within {self.timeout:g} s") from None
        conn.info["writing"] = True

    def _checkin(self, dbapi_connection: Any, record: Any) -> None:
        if record is not None and record.info.pop("writing", False):
            self.release()


# --- SQLite: one trip to aiosqlite's thread per statement --------------------------------------


def _run_statement(
    conn: sqlite3.Connection, operation: str, parameters: Any, many: bool
) -> tuple[Any, int, int | None, list[Any]]:
    """In aiosqlite's thread: the whole statement, rows included (description, rowcount, lastrowid, rows)."""
    cursor = conn.cursor()
    try:
        if many:
            cursor.executemany(operation, parameters)
        elif parameters is None:
            cursor.execute(operation)
        else:
            cursor.execute(operation, parameters)
        description = cursor.description
        rows = cursor.fetchall() if description else []
        return description, cursor.rowcount, cursor.lastrowid, rows  # rowcount after the fetch (RETURNING)
    finally:
        cursor.close()


class _OneTripCursor(AsyncAdapt_aiosqlite_cursor):
    """A statement in one trip to aiosqlite's thread instead of four (cursor, execute, fetch, close).

    Each trip waits for the event loop to come round, which in a storm takes a millisecond or
    more; a writer holds SQLite's one write turn for every trip of its transaction, so the trips
    decide how many writes a second the bot can make (`WriteQueue`). Results are fetched whole,
    as SQLAlchemy's own aiosqlite cursor does; server-side cursors keep the stock class.
    """

    __slots__ = ("_arraysize", "_description", "_lastrowid", "_rowcount")

    def __init__(self, adapt_connection: Any) -> None:  # no aiosqlite cursor: a trip saved
        self._adapt_connection = adapt_connection
        self._connection = adapt_connection._connection
        self._cursor = None  # type: ignore[assignment]
        self._soft_closed_memoized = EMPTY_DICT
        self._rows = collections.deque()
        self._description: Any = None
        self._rowcount = -1
        self._lastrowid: int | None = None
        self._arraysize = 1

    @property
    def description(self) -> Any:
        return self._description

    @property
    def rowcount(self) -> int:
        return self._rowcount

    @property
    def lastrowid(self) -> int:
        return self._lastrowid  # type: ignore[return-value]

    @property
    def arraysize(self) -> int:
        return self._arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._arraysize = value

    async def _run(self, operation: Any, parameters: Any, *, many: bool) -> None:
        async with self._adapt_connection._execute_mutex:
            conn = self._connection._conn
            result = await self._connection._execute(_run_statement, conn, operation, parameters, many)
        self._description, self._rowcount, self._lastrowid, rows = result
        self._rows = collections.deque(rows)

    async def _execute_async(self, operation: Any, parameters: Any) -> Any:
        await self._run(operation, parameters, many=False)

    async def _executemany_async(self, operation: Any, seq_of_parameters: Any) -> Any:
        await self._run(operation, seq_of_parameters, many=True)

    async def _async_soft_close(self) -> None:
        """Nothing to close: the sqlite3 cursor was closed in its own trip."""

    def close(self) -> None:
        self._rows.clear()


class _OneTripConnection(AsyncAdapt_aiosqlite_connection):
    __slots__ = ()
    _cursor_cls = _OneTripCursor


class _OneTripDriver(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite driver module, with `_OneTripCursor` (given as `create_async_engine(module=...)`)."""

    def connect(self, *arg: Any, **kw: Any) -> AsyncAdapt_aiosqlite_connection:
        connection = self.aiosqlite.connect(*arg, **kw)
        connection._thread.daemon = True  # as SQLAlchemy's own: a forgotten connection must not hold up exit
        return _OneTripConnection(self, await_(connection))
