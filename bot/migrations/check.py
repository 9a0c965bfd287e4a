"""`python -m bot check`: can the bot open its database, and what will start-up do to its schema?

Reads only: no file is created, nothing is migrated or adopted. A deploy at 3 a.m. learns here, not
from a crash loop, that DATABASE_URL is wrong or that the database belongs to a newer release.
"""

from __future__ import annotations

import asyncio

from sqlalchemy import inspect
from sqlalchemy.engine import Connection

from bot.db import Database, missing_file, shown_url, sqlite_unopenable, unusable
from bot.migrations.run import current, newer_schema, revisions
from bot.settings import Settings

# A PostgreSQL host that drops packets would hold the connect for the TCP timeout (minutes).
CONNECT_TIMEOUT_S = 10.0

Report = tuple[list[str], list[str], list[str]]


def _where(connection: Connection) -> tuple[str | None, bool]:
    """The schema's revision, and whether the bot's tables are there (a database from before Alembic)."""
    return current(connection), inspect(connection).has_table("incidents")


async def _read(url: str) -> tuple[str | None, bool]:
    database = Database(url, pool=(1, 0))
    try:
        async with database.engine.connect() as conn:
            return await conn.run_sync(_where)
    finally:
        await database.dispose()


async def check(settings: Settings) -> Report:
    url = settings.database_url
    shown = shown_url(url)
    if (problem := sqlite_unopenable(url)) is not None:
        return [f"{problem}: the directory must exist and be writable by the bot; fix DATABASE_URL"], [], []
    newest = revisions()[-1]
    if (path := missing_file(url)) is not None:
        return [], [], [f"database: {path} does not exist yet; the bot creates it at start (schema {newest})"]
    try:
        revision, has_tables = await asyncio.wait_for(_read(url), CONNECT_TIMEOUT_S)
    except TimeoutError:
        return (
            [f"database: no answer from DATABASE_URL={shown} within {CONNECT_TIMEOUT_S:g} s: check host and port"],
            [],
            [],
        )
    except Exception as exc:
        line = unusable(exc, url=url) or f"database error: cannot use DATABASE_URL={shown}: {type(exc).__name__}"
        return [f"{line}: check DATABASE_URL (host, port, database name, user and password)"], [], []
    if revision == newest:
        return [], [], [f"database: {shown} answers; schema at {revision}, this release's newest"]
    if revision is None:
        now = "has the bot's tables from before Alembic" if has_tables else "is empty"
        return [], [], [f"database: {shown} answers and {now}; the bot brings it to schema {newest} at start"]
    if revision not in revisions():
        return [f"database: {newer_schema(revision)}"], [], []
    note = (
        f"database: {shown} answers; schema at {revision}, which the bot upgrades to {newest} at start (or now:"
        f" `python -m bot migrate`); to go back to this release's predecessor afterwards, `migrate --to {revision}`"
    )
    return [], [], [note]
