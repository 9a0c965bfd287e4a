"""Upgrading a database to the newest revision, at start-up and from `python -m bot migrate`.

A database made by a release before Alembic (the home-made runner's `schema_version` table, no
`alembic_version`) is adopted first: the runner's one step (`incidents.private`) is applied if it
is missing, then the database is stamped at the baseline, which is that schema.
"""

from __future__ import annotations

import logging
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
BASELINE = "0001"
# Any constant: two replicas starting at once take turns to migrate (PostgreSQL advisory lock).
_PG_LOCK = 0x1C1DE27


def config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(HERE))
    return cfg


def head() -> str | None:
    return ScriptDirectory.from_config(config()).get_current_head()


def current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


async def upgrade(engine: AsyncEngine) -> None:
    """One transaction, one migrator at a time (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE)."""
    async with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            # sqlite3 would run DDL outside a transaction (see bot/db.py); this makes the whole
            # upgrade one transaction and makes another process wait for it in the busy handler.
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        await conn.run_sync(_upgrade)


async def migrate_cli(url: str) -> int:
    """`python -m bot migrate`: upgrade, and say where the schema stands."""
    from bot.db import Database

    database = Database(url)
    try:
        await database.migrate()
        async with database.engine.connect() as conn:
            revision = await conn.run_sync(current)
    finally:
        await database.dispose()
    print(f"database schema at revision {revision} (head {head()})")
    return 0


def _upgrade(connection: Connection) -> None:
    cfg = config()
    cfg.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "incidents" in tables:
        _adopt(connection)
        command.stamp(cfg, BASELINE)
    before = current(connection)
    command.upgrade(cfg, "head")
    after = current(connection)
    if before != after:
        log.info("database schema upgraded from %s to %s", before or "nothing", after)


def _adopt(connection: Connection) -> None:
    """A database from before Alembic: make it the baseline's schema (what `schema_version` steps did)."""
    columns = {c["name"] for c in inspect(connection).get_columns("incidents")}
    if "private" not in columns:
        log.info("applying the pre-Alembic step 1: private incidents")
        connection.execute(text("ALTER TABLE incidents ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE"))
    connection.execute(text("DROP TABLE IF EXISTS schema_version"))
