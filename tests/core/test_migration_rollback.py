"""Rolling the bot back to an older release: every revision undoes itself exactly, `python -m bot migrate
--to REV` moves the schema down, and an older release refuses, with what to do, a schema a newer one made.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import inspect, text
from sqlalchemy.engine import Connection

from bot.db import Database
from bot.exceptions import ConfigError
from bot.incidents import service
from bot.incidents.models import IncidentCreate, Severity
from bot.migrations.run import config, current, head, move, revisions
from bot.settings import normalise_database_url
from tests.core.test_migrations import differences

NOW = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


def schema(connection: Connection) -> dict[str, Any]:
    """What a revision leaves: tables, their columns, indexes and foreign keys, as the database reports them."""
    found = inspect(connection)
    return {
        table: {
            "columns": sorted((c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(table)),
            "indexes": sorted(
                (i["name"] or "", tuple(i["column_names"]), bool(i["unique"])) for i in found.get_indexes(table)
            ),
            "foreign_keys": sorted(
                (tuple(f["constrained_columns"]), f["referred_table"]) for f in found.get_foreign_keys(table)
            ),
        }
        for table in sorted(found.get_table_names())
        if table != "alembic_version"
    }


async def snapshot(database: Database) -> tuple[str | None, dict[str, Any]]:
    async with database.engine.connect() as conn:
        return await conn.run_sync(current), await conn.run_sync(schema)


@pytest.fixture
async def database(database_url: str) -> Any:
    db = Database(normalise_database_url(database_url))
    yield db
    await db.dispose()


async def test_each_revision_undoes_itself_and_the_rows_of_older_ones_stay(database: Database) -> None:
    """Down one revision at a time from the newest: each step leaves exactly the schema that going up to that
    revision left, and an incident stored at the newest survives down to the oldest and back up."""
    chain = revisions()
    assert chain[0] == "0001" and chain[-1] == head() and len(chain) >= 8
    going_up = {}
    for revision in chain:
        await move(database.engine, target=revision)
        at, found = await snapshot(database)
        assert at == revision
        going_up[revision] = found

    async with database.session() as session:
        data = IncidentCreate(title="Checkout returns 500", severity=Severity.P1, declared_by="U0ALICE", service="api")
        stored = await service.create(session, data=data, now=NOW)

    for revision in reversed(chain[:-1]):
        await move(database.engine, target=revision)
        at, found = await snapshot(database)
        assert at == revision
        assert found == going_up[revision], f"undoing the revision after {revision} left a different schema"
        async with database.engine.connect() as conn:
            row = (await conn.execute(text("SELECT title FROM incidents WHERE id = :id"), {"id": stored.id})).one()
        assert row.title == "Checkout returns 500"

    await database.migrate()
    async with database.engine.connect() as conn:
        assert await conn.run_sync(current) == head()
        assert await conn.run_sync(differences) == []
    async with database.session() as session:
        again = await service.get(session, number=stored.id or 0)
    assert (again.title, again.service, again.declared_at) == ("Checkout returns 500", "api", NOW)


async def test_the_oldest_revision_undoes_itself_to_an_empty_database(database: Database) -> None:
    await database.migrate()
    async with database.session() as session:
        data = IncidentCreate(title="Search is slow", severity=Severity.P2, declared_by="U0ALICE")
        await service.create(session, data=data, now=NOW)

    def to_base(connection: Connection) -> set[str]:
        cfg = config()
        cfg.attributes["connection"] = connection
        command.downgrade(cfg, "base")
        return set(inspect(connection).get_table_names())

    await move(database.engine, target="0001")
    async with database.engine.begin() as conn:  # foreign keys on: the baseline drops what points at a table first
        assert await conn.run_sync(to_base) == {"alembic_version"}
    await database.migrate()
    async with database.engine.connect() as conn:
        assert await conn.run_sync(differences) == []


async def test_sqlite_checks_foreign_keys_again_after_a_move(database_url: str) -> None:
    """The move turns them off on its connection; the pool hands that connection to the next request."""
    if not database_url.startswith("sqlite"):
        pytest.skip("a SQLite pragma")
    database = Database(normalise_database_url(database_url), pool=(1, 0))  # one connection: the same one
    try:
        await database.migrate()
        await move(database.engine, target=revisions()[-2])
        async with database.engine.connect() as conn:
            assert (await conn.exec_driver_sql("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        await database.dispose()


async def test_a_schema_a_newer_release_made_is_refused_at_start_with_what_to_do(database: Database) -> None:
    await database.migrate()
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0999'"))

    with pytest.raises(ConfigError) as refused:
        await database.migrate()
    message = str(refused.value)
    assert "revision 0999, which a newer release made" in message
    assert f"python -m bot migrate --to {head()}` with the newer release" in message
    assert await database.revision() == "0999", "nothing was touched"


async def test_moving_to_a_revision_this_release_does_not_know_is_refused(database: Database) -> None:
    await database.migrate()
    with pytest.raises(ConfigError, match=r"--to 0999: no such revision in this release \(it knows 0001, 0002"):
        await move(database.engine, target="0999")
    assert await database.revision() == head()


def migrate(url: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "bot.yml").write_text("channels: {announcements: C0INCIDENTS}\n")
    env = {**os.environ, "DATABASE_URL": url, "BOT_CONFIG": str(tmp_path / "bot.yml")}
    return subprocess.run(
        [sys.executable, "-m", "bot", "migrate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,  # the exit code is asserted, with stderr in the message
    )


def test_python_m_bot_migrate_to_moves_down_and_back_up(database_url: str, tmp_path: Path) -> None:
    chain = revisions()
    older = chain[-2]
    assert migrate(database_url, tmp_path).returncode == 0

    down = migrate(database_url, tmp_path, "--to", older)
    assert down.returncode == 0, down.stderr
    assert f"database schema at revision {older} (this release's newest: {head()})" in down.stdout
    assert f"undoing revisions {head()}" in down.stderr

    wrong = migrate(database_url, tmp_path, "--to", "0999")
    assert wrong.returncode == 2 and "no such revision in this release" in wrong.stderr

    up = migrate(database_url, tmp_path)
    assert up.returncode == 0, up.stderr
    assert f"database schema at revision {head()}" in up.stdout
