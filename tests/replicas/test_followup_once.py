"""Two replicas, one database: *Create issue* clicked on both at once opens one issue."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from bot.incidents import service
from tests.fakes.github import FakeGitHub
from tests.fakes.slack_api import FakeSlack
from tests.replicas.conftest import REPLICAS_ONLY, two_bots

pytestmark = REPLICAS_ONLY


async def test_create_issue_on_both_replicas_opens_one_issue(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub() as github:
        tracker = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": github.url}
        config = {"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS"}, "issue_tracker": tracker}
        async with two_bots(fake_slack, database_url, tmp_path, config) as replicas:
            a, b = replicas.a, replicas.b
            incident = await a.declare("P1 Checkout is down")
            channel = incident.channel_id or ""
            for n in range(5):
                await a.command(f"action follow-up {n}", channel=channel)
            async with a.deps.db.session() as session:
                items = await service.action_items(session, incident_id=incident.id or 0)
            clicks = [
                bot.click("followup_create_issue", str(item.id), channel=channel, settle=False)
                for item in items
                for bot in (a, b)
            ]
            assert {r.status_code for r in await asyncio.gather(*clicks)} == {200}
            await replicas.settle()
            assert len(github.issues) == 5, "one issue per follow-up, whichever replica got the click"
            async with a.deps.db.session() as session:
                items = await service.action_items(session, incident_id=incident.id or 0)
            assert sorted(i.issue_url or "" for i in items) == sorted(i["html_url"] for i in github.issues.values())
            assert github.violations == []
