"""The three tracker fakes behind one fixture, so every follow-up test runs against GitHub, Jira and Linear,
and a bot configured with it (`tbot`) on a fake clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.fakes.github import FakeGitHub
from tests.fakes.jira import FakeJira
from tests.fakes.linear import FakeLinear
from tests.fakes.slack_api import FakeSlack
from tests.fakes.webhook import FakeServer
from tests.harness import BotHarness, running_bot

KINDS = ("github", "jira", "linear")


@dataclass
class Tracker:
    kind: str
    fake: Any  # FakeGitHub | FakeJira | FakeLinear: each has issues, close/reopen/delete(key), rate_limit_next()
    config: dict[str, Any]  # the issue_tracker: section of bot.yml

    def keys(self) -> list[str]:
        return [str(k) for k in self.fake.issues]


def _config(kind: str, fake: FakeServer) -> dict[str, Any]:
    if kind == "github":
        return {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
    if kind == "jira":
        return {
            "kind": "jira",
            "project": "OPS",
            "api_url": fake.url,
            "email_env": "TEST_JIRA_EMAIL",
            "token_env": "TEST_JIRA_TOKEN",
        }
    return {"kind": "linear", "team_id": "team-eng", "token_env": "TEST_LINEAR_KEY", "api_url": f"{fake.url}/graphql"}


@pytest.fixture(params=KINDS)
async def tracker(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Tracker]:
    kind = str(request.param)
    fake: FakeServer = {"github": FakeGitHub, "jira": FakeJira, "linear": FakeLinear}[kind]()
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    monkeypatch.setenv("TEST_JIRA_EMAIL", "bot@acme.example")
    monkeypatch.setenv("TEST_JIRA_TOKEN", "jira-token")
    monkeypatch.setenv("TEST_LINEAR_KEY", "lin_api_test")
    await fake.start()
    try:
        yield Tracker(kind=kind, fake=fake, config=_config(kind, fake))
        assert fake.violations == [], f"the bot broke {kind}'s contract: {fake.violations}"
    finally:
        await fake.stop()


@pytest.fixture
def tracker_config(tracker: Tracker) -> dict[str, Any]:
    return dict(tracker.config)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tbot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker_config: dict[str, Any], clock: FakeClock
) -> AsyncIterator[BotHarness]:
    config = {"issue_tracker": tracker_config}
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as harness:
        yield harness
