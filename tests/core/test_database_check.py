"""`python -m bot check` reports whether the bot can open its database and what start-up will do to the schema.

Each case runs on the suite's database (SQLite file or a real PostgreSQL database) and checks that
the check itself changed nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.db import Database
from bot.migrations.check import check
from bot.migrations.run import move, revisions
from bot.settings import Settings, normalise_database_url
from tests.conftest import make_settings
from tests.core.test_migration_rollback import snapshot
from tests.fakes.slack_api import FakeSlack

NEWEST = revisions()[-1]


def settings_on(fake: FakeSlack, tmp_path: Path, url: str) -> Settings:
    return make_settings(fake=fake, database_url=url, tmp_path=tmp_path)


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    db = Database(normalise_database_url(database_url))
    yield db
    await db.dispose()


async def test_a_database_at_this_releases_schema_is_a_note(
    fake_slack: FakeSlack, tmp_path: Path, database: Database
) -> None:
    await database.migrate()
    errors, warnings, notes = await check(settings_on(fake_slack, tmp_path, database.url))
    assert (errors, warnings) == ([], [])
    assert notes and notes[0].endswith(f"answers; schema at {NEWEST}, this release's newest")
    assert "password" not in notes[0] or "***" in notes[0]


async def test_an_older_schema_says_it_will_be_upgraded_and_is_left_alone(
    fake_slack: FakeSlack, tmp_path: Path, database: Database
) -> None:
    older = revisions()[-3]
    await database.migrate()
    await move(database.engine, target=older)
    before = await snapshot(database)
    errors, _, notes = await check(settings_on(fake_slack, tmp_path, database.url))
    assert errors == []
    assert f"schema at {older}, which the bot upgrades to {NEWEST} at start" in notes[0]
    assert f"`migrate --to {older}`" in notes[0]
    assert await snapshot(database) == before  # nothing was migrated


async def test_a_schema_from_a_newer_release_is_an_error_with_what_to_do(
    fake_slack: FakeSlack, tmp_path: Path, database: Database
) -> None:
    await database.migrate()
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE alembic_version SET version_num = '0099'"))
    errors, _, notes = await check(settings_on(fake_slack, tmp_path, database.url))
    assert notes == []
    assert len(errors) == 1
    assert "schema is at revision 0099, which a newer release made" in errors[0]
    assert f"`python -m bot migrate --to {NEWEST}` with the newer release first" in errors[0]


async def test_an_empty_database_is_made_at_start(fake_slack: FakeSlack, tmp_path: Path, database: Database) -> None:
    await database.ping()  # SQLite: the file exists, with no tables
    errors, _, notes = await check(settings_on(fake_slack, tmp_path, database.url))
    assert errors == []
    assert notes[0].endswith(f"answers and is empty; the bot brings it to schema {NEWEST} at start")
    async with database.engine.connect() as conn:
        assert not await conn.run_sync(lambda c: c.dialect.has_table(c, "alembic_version"))


async def test_a_sqlite_file_not_there_yet_is_not_created(fake_slack: FakeSlack, tmp_path: Path) -> None:
    path = tmp_path / "new" / "bot.db"
    path.parent.mkdir()
    errors, _, notes = await check(settings_on(fake_slack, tmp_path, f"sqlite:///{path}"))
    assert errors == []
    assert notes == [f"database: {path} does not exist yet; the bot creates it at start (schema {NEWEST})"]
    assert not path.exists()


async def test_a_sqlite_directory_that_is_not_there_is_an_error(fake_slack: FakeSlack, tmp_path: Path) -> None:
    errors, _, _ = await check(settings_on(fake_slack, tmp_path, f"sqlite:///{tmp_path / 'nope' / 'bot.db'}"))
    assert len(errors) == 1
    assert errors[0].startswith("database error: cannot use DATABASE_URL=")
    assert errors[0].endswith("fix DATABASE_URL")


async def test_an_unreachable_postgresql_is_one_line_without_the_password(
    fake_slack: FakeSlack, tmp_path: Path
) -> None:
    url = "postgresql://bot:s3cret@127.0.0.1:1/incidents"  # nothing listens on port 1
    errors, warnings, notes = await check(settings_on(fake_slack, tmp_path, url))
    assert (warnings, notes) == ([], [])
    assert len(errors) == 1
    assert "\n" not in errors[0]
    assert "s3cret" not in errors[0]
    assert errors[0].startswith("database error: cannot use DATABASE_URL=postgresql+psycopg://bot:***@127.0.0.1:1/")
    assert errors[0].endswith("check DATABASE_URL (host, port, database name, user and password)")
