"""GitHub-only: an issue transferred to another repository still tells the bot when it is closed."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.fakes.github import FakeGitHub
from tests.fakes.slack_api import FakeSlack
from tests.followups.test_followups_e2e import STALE, items
from tests.harness import running_bot


async def test_a_transferred_issue_closed_in_its_new_repository_marks_the_follow_up_done(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub answers a transferred issue's old address with 301 Moved Permanently to its new one."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    clock = FakeClock()
    async with FakeGitHub() as github:
        tracker = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": github.url}
        settings = make_settings(
            fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={"issue_tracker": tracker}
        )
        async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
            incident = await bot.declare("P2 Webhooks delayed")
            channel = incident.channel_id or ""
            await bot.command("action Move webhook delivery to its own queue", channel=channel)
            [item] = await items(bot, incident.id or 0)
            await bot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel)
            [item] = await items(bot, incident.id or 0)
            assert item.issue_key == "1"

            github.transfer("1")["state"] = "closed"  # moved to the team that owns it, which then fixed it
            clock.advance(STALE)
            await bot.command("postmortem", channel=channel)
            [item] = await items(bot, incident.id or 0)
            assert item.done, "the closed issue was not seen through GitHub's redirect"
            assert any("its issue was closed" in e.text for e in await bot.timeline(incident.id or 0))
        assert github.violations == []
