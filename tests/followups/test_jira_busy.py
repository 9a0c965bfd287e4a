"""Jira under load answers 503 with Retry-After (a resource limit reached), which Atlassian says may be
handled as a 429: the wait it asks for is honoured (up to the bot's bound, as for a 429), and a create
answered so is looked up by its token before it is sent again (its outcome is unknown)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import FakeClock
from bot.config import IssueTracker as TrackerConfig
from bot.followups.ports import IssueState, IssueTracker, NewIssue, TrackerRateLimited
from bot.followups.trackers import build
from tests.conftest import make_settings
from tests.fakes.jira import FakeJira
from tests.fakes.slack_api import FakeSlack
from tests.fakes.webhook import Fault
from tests.followups.test_contract import TOKENED, Waits
from tests.followups.test_followups_e2e import items
from tests.harness import running_bot

BUSY = {"errorMessages": ["The service is temporarily unavailable."], "errors": {}}


def busy(seconds: int, *, after: bool = False, path: str = "") -> Fault:
    return Fault(503, {"Retry-After": str(seconds)}, BUSY, after=after, path_contains=path)


@pytest.fixture
async def jira(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeJira]:
    monkeypatch.setenv("TEST_JIRA_EMAIL", "bot@acme.example")
    monkeypatch.setenv("TEST_JIRA_TOKEN", "jira-token")
    async with FakeJira() as fake:
        yield fake
        assert fake.violations == []


def config(fake: FakeJira) -> dict[str, Any]:
    return {
        "kind": "jira",
        "project": "OPS",
        "api_url": fake.url,
        "email_env": "TEST_JIRA_EMAIL",
        "token_env": "TEST_JIRA_TOKEN",
    }


@pytest.fixture
async def issues(jira: FakeJira) -> AsyncIterator[tuple[IssueTracker, Waits]]:
    waits = Waits()
    async with httpx.AsyncClient(timeout=10) as http:
        yield build(TrackerConfig.model_validate(config(jira)), http=http, sleep=waits), waits


def creates(fake: FakeJira) -> int:
    return len([r for r in fake.requests if r.method == "POST" and r.path == "/rest/api/3/issue"])


def searches(fake: FakeJira) -> int:
    return len([r for r in fake.requests if r.path == "/rest/api/3/search/jql"])


async def test_a_read_answered_503_with_retry_after_waits_as_asked(
    jira: FakeJira, issues: tuple[IssueTracker, Waits]
) -> None:
    tracker, waits = issues
    made = await tracker.create(TOKENED)
    jira.inject(busy(13, path="/rest/api/3/issue/"))
    assert await tracker.state(key=made.key) == IssueState.OPEN
    assert waits.seconds == [13.0]  # Jira's wait, not the bot's own 2 s back-off for a 5xx


async def test_a_create_answered_503_with_retry_after_waits_then_looks_it_up_before_creating_again(
    jira: FakeJira, issues: tuple[IssueTracker, Waits]
) -> None:
    tracker, waits = issues
    jira.inject(busy(13, after=True, path="/rest/api/3/issue"))  # made, but the answer is the 503
    made = await tracker.create(TOKENED)
    assert list(jira.issues) == [made.key] and creates(jira) == 1 and searches(jira) == 1
    assert waits.seconds == [13.0]  # longer than the 10 s the index is given (`JiraIssues.look_after`)

    jira.inject(busy(11, path="/rest/api/3/issue"))  # not made: looked up, then created once
    again = await tracker.create(NewIssue(title="second", body="b", token="8c1d0e2f-3a4b-4c5d-8e6f-7a8b9c0d1e2f"))
    assert again.key != made.key and len(jira.issues) == 2 and creates(jira) == 3 and searches(jira) == 2
    assert waits.seconds == [13.0, 11.0]


async def test_a_503_asking_for_longer_than_the_bot_waits_is_told_as_a_wait_and_the_create_not_repeated(
    jira: FakeJira, issues: tuple[IssueTracker, Waits]
) -> None:
    tracker, waits = issues
    jira.inject(busy(600, path="/rest/api/3/issue"))
    with pytest.raises(TrackerRateLimited, match="try again in") as caught:
        await tracker.create(TOKENED)
    assert caught.value.retry_after == 600 and waits.seconds == [] and creates(jira) == 1 and not jira.issues
    jira.inject(busy(600, path="/rest/api/3/search"))
    with pytest.raises(TrackerRateLimited, match="try again in"):
        await tracker.find(token=TOKENED.token)
    assert waits.seconds == []


async def test_a_click_answered_503_with_a_long_retry_after_is_told_when_and_the_next_click_looks_first(
    jira: FakeJira, fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={"issue_tracker": config(jira)}
    )
    async with running_bot(fake=fake_slack, settings=settings, clock=FakeClock()) as bot:
        incident = await bot.declare("P1 Payments failing")
        channel = incident.channel_id or ""
        await bot.command("action Page the payments team on 5xx", channel=channel)
        [item] = await items(bot, incident.id or 0)
        jira.inject(busy(600, after=True, path="/rest/api/3/issue"))  # made, but Jira answered 503: come back later
        await bot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel)
        assert "try again in 601 s" in bot.last_reply()
        assert creates(jira) == 1, "the create was sent again before the wait Jira asked for"
        [item] = await items(bot, incident.id or 0)
        assert item.issue_url is None

        await bot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel)  # later
        [item] = await items(bot, incident.id or 0)
        assert creates(jira) == 1 and len(jira.issues) == 1, "the second click made a second issue"
        [key] = jira.issues
        assert item.issue_key == key and item.issue_url and item.issue_url in bot.last_reply()
