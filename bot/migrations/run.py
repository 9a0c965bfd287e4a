"""Moving a database between revisions: up to the newest at start-up and with `python -m bot migrate`,
down with `python -m bot migrate --to REV` before rolling the bot back to an older release.

A database made by a release before Alembic (the home-made runner's `schema_version` table, no
`alembic_version`) is adopted first: the runner's one step (`incidents.private`) is applied if it
is missing, then the database is stamped at the baseline, which is that schema.

A database a newer release upgraded is refused at start with what to do: the older code would write
rows the newer schema rejects (a NOT NULL column it does not know) in the middle of an incident.
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

from bot.exceptions import ConfigError

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


def revisions() -> list[str]:
    """Every revision this release knows, oldest first (the chain is linear: one head)."""
    return [script.revision for script in reversed(list(ScriptDirectory.from_config(config()).walk_revisions()))]


async def upgrade(engine: AsyncEngine) -> None:
    await move(engine, target="head")


async def move(engine: AsyncEngine, *, target: str) -> None:
    """One transaction, one migrator at a time (PostgreSQL: an advisory lock; SQLite: BEGIN IMMEDIATE)."""
    if target != "head" and target not in revisions():
        known = ", ".join(revisions())
        raise ConfigError(f"--to {target}: no such revision in this release (it knows {known})")
    if engine.dialect.name != "sqlite":
        async with engine.begin() as conn:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
            await conn.run_sync(_move, target)
        return
    async with engine.connect() as conn:
        # Batch mode rebuilds a table to drop or change a column: it drops the old one, whose implicit
        # DELETE would fail on the rows that point at it. SQLite's own procedure for this (its docs,
        # "ALTER TABLE", the 12 steps) turns foreign keys off, which only works outside a transaction,
        # and checks them before committing. sqlite3 (legacy mode, see bot/db.py) opens no
        # transaction for a PRAGMA, so this runs outside one.
        await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        await conn.commit()  # SQLAlchemy's own record of a transaction; sqlite3 has none open
        try:
            async with conn.begin():
                # sqlite3 would run DDL outside a transaction; this makes the whole move one
                # transaction and makes another process wait for it in the busy handler.
                await conn.exec_driver_sql("BEGIN IMMEDIATE")
                await conn.run_sync(_move, target)
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
                if broken:
                    raise RuntimeError(f"the schema change would leave rows pointing nowhere: {broken[:5]}")
        finally:
            await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
            await conn.commit()


async def migrate_cli(url: str, *, to: str | None = None) -> int:
    """`python -m bot migrate [--to REV]`: move the schema, and say where it stands."""
    from bot.db import Database

    database = Database(url)
    try:
        await database.migrate() if to is None else await move(database.engine, target=to)
        async with database.engine.connect() as conn:
            revision = await conn.run_sync(current)
    finally:
        await database.dispose()
    print(f"database schema at revision {revision} (this release's newest: {head()})")
    return 0


def newer_schema(revision: str) -> str:
    """What to do about a schema a newer release made (start-up refuses it, `check` reports it)."""
    newest = revisions()[-1]
    return (
        f"the database schema is at revision {revision}, which a newer release made; this release knows up to"
        f" {newest}. To roll back, run `python -m bot migrate --to {newest}` with the newer release first"
        " (it undoes what that release added, and drops the data kept only there); or run the newer release"
    )


def _move(connection: Connection, target: str) -> None:
    cfg = config()
    cfg.attributes["connection"] = connection
    tables = set(inspect(connection).get_table_names())
    if "alembic_version" not in tables and "incidents" in tables:
        _adopt(connection)
        command.stamp(cfg, BASELINE)
    before = current(connection)
    known = revisions()
    if before is not None and before not in known:
        raise ConfigError(newer_schema(before))
    wanted = known[-1] if target == "head" else target
    if before is not None and known.index(wanted) < known.index(before):
        undone = known[known.index(wanted) + 1 : known.index(before) + 1]
        log.warning("database schema: undoing revisions %s", ", ".join(reversed(undone)))
        command.downgrade(cfg, wanted)
    else:
        command.upgrade(cfg, wanted)
    after = current(connection)
    if before != after:
        log.info("database schema moved from %s to %s", before or "nothing", after)


def _adopt(connection: Connection) -> None:
    """A database from before Alembic: make it the baseline's schema (what `schema_version` steps did)."""
    columns = {c["name"] for c in inspect(connection).get_columns("incidents")}
    if "private" not in columns:
        log.info("applying the pre-Alembic step 1: private incidents")
        connection.execute(text("ALTER TABLE incidents ADD COLUMN private BOOLEAN NOT NULL DEFAULT FALSE"))
    connection.execute(text("DROP TABLE IF EXISTS schema_version"))
