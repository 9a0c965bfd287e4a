"""Database engine, sessions and start-up migration.

SQLite (aiosqlite) by default, PostgreSQL (psycopg 3, async) in production. All timestamps are
stored as UTC and come back timezone-aware on both engines.

Concurrency is isolation, not ordering: SQLite runs in WAL with a busy timeout (readers never
wait; a writer waits in SQLite's own busy handler), PostgreSQL runs transactions at once, and the
pager has its own small engine (`Database.for_pager()`) so its few writes never wait for a pooled
connection behind a storm of declarations. No session is held across a Slack call
(tests/conftest.py fails any test that does).

Migrations are Alembic's (`bot/migrations/`): `Database.migrate()` upgrades to head at start-up,
and `python -m bot migrate` does the same from the command line.
"""

from __future__ import annotations

import importlib
import logging
import os
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import DateTime, event, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Dialect, make_url
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from sqlalchemy.pool import PoolResetState
from sqlalchemy.types import TypeDecorator
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.migrations import HEAD

log = logging.getLogger(__name__)

# The database is unreachable or stuck for now (restarting, failing over, a lost volume, a locked SQLite
# file, a full pool): the same work may succeed a moment later. Any other error would fail again alike.
DATABASE_DOWN = (OperationalError, InterfaceError, PoolTimeout)

# Every module that defines tables; imported before migrations and autogenerate so the metadata is complete.
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
    "bot.followups.models",
    "bot.web.models",
]

# SQLite: how long a writer waits for another connection's write (SQLite's busy handler) before
# "database is locked". A storm's writes take a few ms each, so this is only ever reached when the
# database is stuck; callers treat the error as the database being unavailable.
BUSY_TIMEOUT_S = 30


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
    """Owns an engine; hands out short-lived sessions.

    `for_pager()` is a second `Database` on the same URL with a small pool of its own: the
    pager's writes (a claim, a DM's outcome) never queue for a connection behind the requests'.
    """

    # (pool_size, max_overflow): the pool is also the bound on how many tasks do database work at
    # once. In a storm, a task waiting for a connection is parked, not competing for the event loop,
    # so the pager (its own pool) is not slowed by a hundred declarations' ORM work at once. Nothing
    # takes a second connection while holding one (tests/session_guard.py), so this cannot deadlock.
    POOL = (5, 5)
    PAGER_POOL = (3, 5)

    def __init__(self, url: str, *, echo: bool = False, pool: tuple[int, int] | None = None) -> None:
        self.url = url
        # hide_parameters: a failed statement's error (logged with its traceback) names the statement, not
        # the values it wrote, which may be a private incident's title or notes.
        kwargs: dict[str, Any] = {"echo": echo, "hide_parameters": True}
        sqlite = url.startswith("sqlite")
        size, overflow = pool or self.POOL
        kwargs["pool_size"], kwargs["max_overflow"] = size, overflow
        if sqlite:
            # sqlite3's `timeout` is SQLite's busy timeout: a writer waits this long for the lock.
            kwargs["connect_args"] = {"timeout": BUSY_TIMEOUT_S}
            kwargs["pool_reset_on_return"] = None  # `_sqlite_reset` rolls back only what is still open
        else:
            kwargs["pool_pre_ping"] = True
        self.engine: AsyncEngine = create_async_engine(url, **kwargs)
        if self.is_sqlite:
            event.listen(self.engine.sync_engine, "connect", _sqlite_pragmas)
            event.listen(self.engine.sync_engine, "reset", _sqlite_reset)
        self.sessions = async_sessionmaker(self.engine, class_=AsyncSession, expire_on_commit=False)
        self._pager: Database | None = None

    @property
    def is_sqlite(self) -> bool:
        return self.engine.dialect.name == "sqlite"

    def for_pager(self) -> Database:
        """The pager's own engine (same database, its own small pool); disposed with this one."""
        if self._pager is None:
            self._pager = Database(self.url, echo=self.engine.echo, pool=self.PAGER_POOL)
        return self._pager

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for one short unit of work. Never await Slack (or any network call) inside it."""
        async with self.sessions() as session:
            yield session

    async def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (a fresh database, or an older release's)."""
        import_models()
        if await self.revision() == HEAD:
            return  # the usual restart: importing Alembic would cost ~0.7 s of CPU before paging resumes
        from bot.migrations.run import upgrade

        await upgrade(self.engine)

    async def revision(self) -> str | None:
        """The schema's Alembic revision; None when Alembic has never run here."""
        try:
            async with self.engine.connect() as conn:
                return (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        except DBAPIError:  # no such table: a new database, or one from before Alembic
            return None

    async def ping(self) -> None:
        async with self.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))

    async def dispose(self) -> None:
        if self._pager is not None:
            await self._pager.dispose()
        await self.engine.dispose()


def shown_url(url: str) -> str:
    """DATABASE_URL as it may be printed: without its password."""
    return make_url(url).render_as_string(hide_password=True)


def _sqlite_file(url: str) -> Path | None:
    """The file a SQLite URL names; None for another database or an in-memory one."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return Path(parsed.database or "")


def missing_file(url: str) -> Path | None:
    """The SQLite file a URL names, when it does not exist (opening it would create an empty database)."""
    path = _sqlite_file(url)
    return None if path is None or path.exists() else path


def sqlite_unopenable(url: str) -> str | None:
    """Why the SQLite file a URL names cannot be opened, found before any engine tries; else None.

    Why before: when aiosqlite fails to connect, its worker thread answers after `asyncio.run` may
    have closed the loop, and prints a thread traceback under our one-line error. Creates nothing.
    """
    path = _sqlite_file(url)
    if path is None:
        return None
    try:
        if path.exists():
            sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True).close()
        elif not path.parent.resolve().is_dir() or not os.access(path.parent.resolve(), os.W_OK | os.X_OK):
            raise sqlite3.OperationalError("unable to open database file")
    except sqlite3.Error as exc:
        return f"database error: cannot use DATABASE_URL={shown_url(url)}: {exc}"
    return None


def unusable(exc: BaseException, *, url: str) -> str | None:
    """One line for a database that cannot be opened or reached (a path, a host, a password); else None."""
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    lines = str(exc.orig if exc.orig is not None else exc).strip().splitlines()
    return f"database error: cannot use DATABASE_URL={shown_url(url)}: {lines[0] if lines else type(exc).__name__}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    """Per connection. WAL: readers never block the writer nor it them (the mode persists in the file).

    Easy to miss (Python's sqlite3 docs, "transaction control"): in its default (legacy) mode, which
    aiosqlite and SQLAlchemy keep, sqlite3 opens a transaction at the first INSERT/UPDATE/DELETE, not
    at a SELECT. So a transaction's first statement that writes takes the write lock at once, waiting
    in the busy handler, and never upgrades an older read snapshot, which in WAL fails at once with
    SQLITE_BUSY instead of waiting. Keep that mode (do not set `isolation_level=None` with a manual
    BEGIN) unless every writing transaction starts with BEGIN IMMEDIATE.
    """
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_S * 1000}")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def _sqlite_reset(dbapi_connection: Any, _record: Any, state: PoolResetState) -> None:
    """A connection back in the pool: roll back only a transaction still open.

    The pool's default reset is an unconditional ROLLBACK, and with aiosqlite each call is a hand-off
    to the connection's thread and back: after every commit (most sessions) it rolled back nothing.
    sqlite3 knows whether a transaction is open (`in_transaction`, read without a call to the thread).
    `pool_reset_on_return=None` with a `reset` listener is SQLAlchemy's documented way to replace the
    reset (its pooling docs, "Reset On Return"); the listener also runs for a connection the
    `Connection` already rolled back, and then finds nothing open.
    """
    if state.asyncio_safe and not state.terminate_only and dbapi_connection.driver_connection.in_transaction:
        dbapi_connection.rollback()


def upsert_insert(session: AsyncSession, model: type[Any]) -> Any:
    """An INSERT into `model`'s table in the session's dialect, whose `on_conflict_do_*` both engines have
    (SQLAlchemy's generic insert does not offer them)."""
    bind = session.bind
    name = bind.dialect.name if bind is not None else "sqlite"
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(model)
