"""Two replicas, one database: *Create issue* clicked on both at once opens one issue, and the scheduled
check for closed issues runs on one of them, asking the tracker about each issue once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest
from sqlmodel import select

from bot.clock import FakeClock, utc
from bot.followups.flows import create_issue
from bot.followups.models import FollowupCheck
from bot.incidents import service
from tests.fakes.github import FakeGitHub
from tests.fakes.slack_api import FakeSlack
from tests.replicas.conftest import REPLICAS_ONLY, two_bots

pytestmark = REPLICAS_ONLY
ITEMS = 6


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


async def test_the_closed_issue_check_runs_on_one_replica_and_asks_about_each_issue_once(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    clock = FakeClock()
    async with FakeGitHub() as github:
        tracker = {
            "kind": "github",
            "repo": "acme/api",
            "token_env": "TEST_GITHUB_TOKEN",
            "api_url": github.url,
            "check_every": "15m",
        }
        config = {"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS"}, "issue_tracker": tracker}
        async with two_bots(fake_slack, database_url, tmp_path, config, clock=clock) as replicas:
            a, b = replicas.a, replicas.b
            incident = await a.declare("P2 Slow checkout")
            for n in range(ITEMS):
                await a.command(f"action follow-up {n}", channel=incident.channel_id or "")
            async with a.deps.db.session() as session:
                items = await service.action_items(session, incident_id=incident.id or 0)
            for item in items:
                await create_issue(a.deps, item_id=item.id or 0, actor="U0ALICE")
            for number in github.issues:
                github.close(str(number))
            async with a.deps.db.session() as session:
                assert len((await session.exec(select(FollowupCheck))).all()) == 1  # both replicas planned one row

            clock.advance(timedelta(minutes=15, seconds=1))
            checkers = [deps.followup_checker for deps in (a.deps, b.deps)]
            assert all(checkers)
            ran = await asyncio.gather(*(c.run_due() for c in checkers for _ in range(2) if c))
            await replicas.settle()

            assert sorted(ran) == [False, False, False, True], "the due sweep is claimed by one process, once"
            reads = [r for r in github.requests if r.method == "GET" and r.path.startswith("/repos/acme/api/issues/")]
            assert len(reads) == ITEMS, "each closed issue is asked about once"
            async with a.deps.db.session() as session:
                items = await service.action_items(session, incident_id=incident.id or 0)
            assert all(i.done for i in items)
            events = [e for e in await a.timeline(incident.id or 0) if "its issue was closed" in e.text]
            assert len(events) == ITEMS
            async with a.deps.db.session() as session:
                [timer] = (await session.exec(select(FollowupCheck))).all()
            assert timer.runs == 1 and utc(timer.due_at) == clock.now() + timedelta(minutes=15)
            assert github.violations == []
