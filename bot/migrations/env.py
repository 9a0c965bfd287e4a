"""Alembic's environment: the bot's models, on the bot's own engine (async), batch mode for SQLite.

The bot calls Alembic with its connection (`bot/migrations/run.py`, at start-up and in `python -m
bot migrate`); the `alembic` command line (autogenerate, see README) builds the engine from the
bot's settings (`DATABASE_URL`), exactly as the bot would.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.db import import_models

import_models()
target_metadata = SQLModel.metadata


def run_on(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        # SQLite cannot ALTER most things: batch mode copies the table. Harmless on PostgreSQL.
        render_as_batch=True,
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def run_from_settings() -> None:
    from bot.db import Database
    from bot.settings import Settings

    database = Database(Settings.load().database_url)
    try:
        async with database.engine.begin() as connection:
            await connection.run_sync(run_on)
    finally:
        await database.dispose()


given = context.config.attributes.get("connection")
if context.is_offline_mode():
    raise SystemExit("offline (--sql) migrations are not supported: the bot migrates its database itself")
elif given is not None:
    run_on(given)
else:
    asyncio.run(run_from_settings())
