"""A create refused because bot.yml points at the wrong place, or the token is wrong, tells the person who
clicked what to check (the setting's name and value, or the token's variable and access), not the
tracker's raw answer."""

from __future__ import annotations

from typing import Any

import pytest

from tests.followups.conftest import Tracker
from tests.followups.test_followups_e2e import items
from tests.harness import BotHarness

WRONG_PLACE = {"github": ("repo", "acme/nope"), "jira": ("project", "NOPE"), "linear": ("team_id", "team-nope")}


@pytest.fixture
def wrong(request: pytest.FixtureRequest) -> str:
    """What bot.yml gets wrong: "place" (where issues go) or "token" (which variable holds it)."""
    return str(request.param)


@pytest.fixture
def tracker_config(tracker: Tracker, wrong: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    config = dict(tracker.config)
    if wrong == "token":
        monkeypatch.setenv("TEST_WRONG_TOKEN", "not-the-token")
        config["token_env"] = "TEST_WRONG_TOKEN"
    else:
        setting, value = WRONG_PLACE[tracker.kind]
        config[setting] = value
    return config


async def click_create(tbot: BotHarness) -> str:
    incident = await tbot.declare("P1 Payments failing")
    channel = incident.channel_id or ""
    await tbot.command("action Page the payments team on 5xx", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    await tbot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    assert item.issue_url is None
    return tbot.last_reply()


@pytest.mark.parametrize("wrong", ["place"], indirect=True)
async def test_a_create_in_a_place_the_tracker_does_not_know_names_the_setting_and_the_tokens_access(
    tbot: BotHarness, tracker: Tracker
) -> None:
    reply = await click_create(tbot)
    setting, value = WRONG_PLACE[tracker.kind]
    assert f"issue_tracker.{setting}" in reply and value in reply and "bot.yml" in reply
    assert '{"' not in reply and "&quot;message" not in reply  # not the tracker's raw JSON
    if tracker.kind == "github":  # a private repository answers 404 to a token without access
        assert "TEST_GITHUB_TOKEN" in reply and "private repository" in reply
    elif tracker.kind == "jira":
        assert "valid project is required" in reply
        # The fake takes an unknown project for the bot's mistake; here it is the point.
        assert tracker.fake.violations == ["project: valid project is required"]
        tracker.fake.violations.clear()
    else:
        assert "API key" in reply
    assert tracker.fake.issues == {}


@pytest.mark.parametrize("wrong", ["token"], indirect=True)
async def test_a_create_with_a_token_the_tracker_refuses_names_where_the_token_comes_from(
    tbot: BotHarness, tracker: Tracker
) -> None:
    reply = await click_create(tbot)
    assert "TEST_WRONG_TOKEN" in reply and "refused" in reply
    if tracker.kind == "jira":
        assert "TEST_JIRA_EMAIL" in reply
    assert tracker.fake.issues == {}
