"""Fixtures shared by the whole suite.

`TEST_DATABASE=postgresql` runs every test against a real PostgreSQL server started here
(`TEST_DATABASE_URL` points at one you run yourself); the default is a SQLite file per test.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from bot.config import BotConfig
from bot.db import Database
from bot.settings import Settings
from tests.browser import browser  # noqa: F401  (a fixture for page tests)
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET, BotHarness, running_bot
from tests.pg import PostgresServer, create_database
from tests.session_guard import SessionGuard

BACKEND = os.environ.get("TEST_DATABASE", "sqlite").lower()
USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0LEAD": "lead", "U0CTO": "cto"}


def pytest_report_header() -> str:
    return f"database backend: {BACKEND}"


@pytest.fixture(autouse=True)
def environment_restored() -> Iterator[None]:
    """`Settings.load` fills the environment in from a test's `.env` (`fill_environment`): what one test's
    `.env` set must not be another's environment."""
    saved = dict(os.environ)
    yield
    if dict(os.environ) != saved:
        os.environ.clear()
        os.environ.update(saved)


@pytest.fixture(autouse=True)
def no_app_outlives_its_test() -> Iterator[None]:
    """aiohttp caches every app's middleware chain (`functools.lru_cache`, 1024 entries), keyed by handlers
    that hold the whole bot: its Deps, engines, Slack client and event loop. Over the suite a thousand bots
    stayed alive (~7,000 objects a test), and a full collection took seconds on a loaded machine: long
    enough for a declaration to miss `settle()`'s 15 s, and the Slack client's, late in the suite."""
    yield
    from aiohttp import web_app

    cached = getattr(web_app, "_cached_build_middleware", None)
    if cached is not None:
        cached.cache_clear()


@pytest.fixture(autouse=True)
def session_guard(monkeypatch: pytest.MonkeyPatch) -> Iterator[SessionGuard]:
    """Every test: no Slack Web API call while the calling task holds a database connection, and no
    second connection taken by a bot task that holds one."""
    with SessionGuard().installed(monkeypatch) as guard:
        yield guard
    if guard.violations:
        pytest.fail("database sessions misused (tests/session_guard.py):\n\n" + "\n\n".join(guard.violations))


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str | None]:
    if BACKEND != "postgresql":
        yield None
        return
    if os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    server = PostgresServer.start()
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def database_url(tmp_path: Path, postgres_admin_url: str | None) -> str:
    """A fresh, empty database for this test, as the plain URL a user would configure."""
    if postgres_admin_url is None:
        return f"sqlite:///{tmp_path / 'bot.db'}"
    name = create_database(postgres_admin_url)
    return postgres_admin_url.rsplit("/", 1)[0] + f"/{name}"


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    from bot.settings import normalise_database_url

    database = Database(normalise_database_url(database_url))
    await database.migrate()
    yield database
    await database.dispose()


@pytest.fixture
async def fake_slack() -> AsyncIterator[FakeSlack]:
    fake = FakeSlack()
    await fake.start()
    for user_id, name in USERS.items():
        fake.add_user(user_id, name)
    fake.add_channel("general", channel_id="C0GENERAL", members=list(USERS))
    fake.add_channel("incidents", channel_id="C0INCIDENTS", members=list(USERS))
    fake.add_channel("alerts", channel_id="C0ALERTS", members=list(USERS))
    yield fake
    await fake.stop()


def make_settings(
    *, fake: FakeSlack, database_url: str, tmp_path: Path, config: dict[str, Any] | None = None, **env: Any
) -> Settings:
    raw = {"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS"}}
    raw.update(config or {})
    values: dict[str, Any] = {
        "slack_bot_token": fake.bot_token,
        "slack_signing_secret": SECRET,
        "slack_api_url": fake.url,
        "database_url": database_url,
        "playbooks_dir": Path(__file__).resolve().parent.parent / "playbooks",
        "bot_config": tmp_path / "bot.yml",
        "config": BotConfig.model_validate(raw),
        "_env_file": None,
    }
    values.update(env)
    return Settings.load(**values)


@pytest.fixture
def bot_config() -> dict[str, Any]:
    """Override in a test module (or parametrize indirectly) to give the bot another bot.yml."""
    return {}


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any]
) -> AsyncIterator[BotHarness]:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config)
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness
