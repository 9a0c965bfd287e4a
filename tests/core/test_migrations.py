"""Alembic migrations, on both engines: the models and the revisions describe the same schema, and a
database made by the previous release (before `incidents.private`, home-made runner) upgrades to head
with its rows intact.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection
from sqlmodel import SQLModel

from bot.db import Database, import_models
from bot.incidents import service
from bot.migrations import HEAD
from bot.migrations.run import BASELINE, config, head
from bot.settings import normalise_database_url

DECLARED = datetime(2026, 10, 1, 9, 30, tzinfo=UTC)


def differences(connection: Connection) -> list[Any]:
    import_models()
    context = MigrationContext.configure(connection, opts={"compare_type": True, "compare_server_default": False})
    return list(compare_metadata(context, SQLModel.metadata))


async def test_models_and_migrations_describe_the_same_schema(db: Database) -> None:
    """Fails when a model changed without a revision: run the autogenerate command in bot/migrations/README."""
    async with db.engine.connect() as conn:
        found = await conn.run_sync(differences)
    assert found == [], f"the models differ from the migrations (add a revision, see bot/migrations/README): {found}"


def test_the_head_start_up_checks_for_is_alembics_head() -> None:
    """`bot.migrations.HEAD` lets a restart skip Alembic: it must name the newest revision."""
    assert head() == HEAD, "bump bot/migrations/__init__.py HEAD to the new revision"


def test_a_model_change_without_a_revision_is_found(tmp_path: Path) -> None:
    """The check above can fail: a column the revisions do not have is reported."""
    import sqlalchemy as sa

    engine = sa.create_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as conn:
        import_models()
        SQLModel.metadata.create_all(conn)
        conn.execute(text("ALTER TABLE incidents DROP COLUMN private"))
        found = differences(conn)
    engine.dispose()
    assert [d[0] for d in found] == ["add_column"]
    assert found[0][3].name == "private"


def runner_schema(connection: Connection, *, version: int) -> None:
    """The schema the pre-Alembic runner left at `version`: the baseline revision's tables (not today's
    models, which grow), minus `incidents.private` below version 1, and its `schema_version` table."""
    cfg = config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, BASELINE)
    connection.execute(text("DROP TABLE alembic_version"))
    if version < 1:
        connection.execute(text("ALTER TABLE incidents DROP COLUMN private"))
    connection.execute(text("CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY)"))
    connection.execute(text("INSERT INTO schema_version (version) VALUES (:v)"), {"v": version})


@pytest.fixture
async def previous_release(database_url: str) -> AsyncIterator[Database]:
    """A database as the previous release left it (before `incidents.private`, the only change since),
    with rows in it. No Alembic."""
    database = Database(normalise_database_url(database_url))
    async with database.engine.begin() as conn:
        await conn.run_sync(runner_schema, version=0)
        for number, title in ((1, "Checkout returns 500"), (2, "Search is slow")):
            await conn.execute(
                text(
                    "INSERT INTO incidents (id, title, severity, status, description, declared_by, declared_at,"
                    " resolution, channel_id) VALUES (:id, :title, 'P1', 'INVESTIGATING', '', 'U0ALICE', :at, '',"
                    " :channel)"
                ),
                {"id": number, "title": title, "at": DECLARED.replace(tzinfo=None), "channel": f"C0INC{number}"},
            )
            await conn.execute(
                text(
                    "INSERT INTO timeline_events (incident_id, kind, text, key, at, data)"
                    " VALUES (:id, 'declared', 'declared', TRUE, :at, '{}')"
                ),
                {"id": number, "at": DECLARED.replace(tzinfo=None)},
            )
    yield database
    await database.dispose()


async def test_the_previous_release_upgrades_to_head_with_its_rows(previous_release: Database) -> None:
    await previous_release.migrate()

    async with previous_release.engine.connect() as conn:
        assert (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one() == head()
        tables = await conn.run_sync(lambda c: set(inspect(c).get_table_names()))
        assert "schema_version" not in tables, "the old runner's table goes once Alembic owns the schema"
        assert await conn.run_sync(differences) == []
    async with previous_release.session() as session:
        first = await service.get(session, number=1)
        second = await service.get(session, number=2)
    assert (first.title, first.private, first.channel_id) == ("Checkout returns 500", False, "C0INC1")
    assert first.declared_at == DECLARED
    assert (second.title, second.private) == ("Search is slow", False)

    # Rows written after the upgrade use the new column, and the upgrade runs again as a no-op.
    async with previous_release.engine.begin() as conn:
        await conn.execute(text("UPDATE incidents SET private = TRUE WHERE id = 2"))
    await previous_release.migrate()
    async with previous_release.session() as session:
        assert (await service.get(session, number=2)).private is True


async def test_a_database_from_the_runners_last_step_is_adopted_as_the_baseline(database_url: str) -> None:
    """Made by the parent release (create_all + step 1): already the baseline, so only stamped."""
    database = Database(normalise_database_url(database_url))
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(runner_schema, version=1)
        await database.migrate()
        async with database.engine.connect() as conn:
            revision = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar_one()
            assert await conn.run_sync(differences) == []
    finally:
        await database.dispose()
    assert BASELINE <= revision == head()


def test_python_m_bot_migrate_upgrades_the_configured_database(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    (tmp_path / "bot.yml").write_text("channels: {announcements: C0INCIDENTS}\n")
    env = {**os.environ, "DATABASE_URL": url, "BOT_CONFIG": str(tmp_path / "bot.yml")}
    done = subprocess.run(
        [sys.executable, "-m", "bot", "migrate"],
        cwd=Path(__file__).resolve().parents[2],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # asserted below, with stderr in the message
    )
    assert done.returncode == 0, done.stderr
    assert f"database schema at revision {head()}" in done.stdout


def upgrade_to(connection: Connection, revision: str) -> None:
    cfg = config()
    cfg.attributes["connection"] = connection
    command.upgrade(cfg, revision)


async def test_0010_starts_follow_ups_the_tracker_closed_as_closed_and_the_others_unknown(database_url: str) -> None:
    """The check acts on a change of the issue from then on: one it closed before the upgrade is known as
    closed (a person's later Reopen stands); the others are recorded as the first check finds them."""
    database = Database(normalise_database_url(database_url))
    at = DECLARED.replace(tzinfo=None)
    try:
        async with database.engine.begin() as conn:
            await conn.run_sync(upgrade_to, "0009")
            await conn.execute(
                text(
                    "INSERT INTO incidents (id, title, severity, status, description, declared_by, declared_at,"
                    " resolution, private) VALUES (1, 'Checkout returns 500', 'P1', 'RESOLVED', '', 'U0ALICE', :at,"
                    " '', FALSE)"
                ),
                {"at": at},
            )
            for number, done, closed_at in ((1, True, at), (2, False, None), (3, True, None)):
                await conn.execute(
                    text(
                        "INSERT INTO action_items (id, incident_id, text, created_by, created_at, done, issue_key,"
                        " issue_closed_at) VALUES (:id, 1, 'Fix it', 'U0ALICE', :at, :done, :key, :closed)"
                    ),
                    {"id": number, "at": at, "done": done, "key": str(40 + number), "closed": closed_at},
                )
        await database.migrate()
        async with database.engine.connect() as conn:
            rows = (await conn.execute(text("SELECT id, issue_state FROM action_items ORDER BY id"))).all()
    finally:
        await database.dispose()
    assert [tuple(row) for row in rows] == [(1, "closed"), (2, None), (3, None)]
