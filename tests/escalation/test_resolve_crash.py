"""kill -9 right after a resolve is committed, before IncidentResolved's handlers ran, then a restart:
PagerDuty is still told, so it stops paging people for a resolved incident."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.crash import resolve_then_die, stay_up
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot

CONFIG = {
    "escalation": {
        "levels": [{"name": "On-call", "after": "0m", "notify": ["U0LEAD"]}],
        "pagerduty": {"api_url": "https://events.pagerduty.test/v2/enqueue"},
    }
}


async def test_pagerduty_is_told_of_a_resolve_a_crash_interrupted(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0UTINGKEY")
    pagerduty = FakePagerDuty()
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(pagerduty)) as http,
        running_bot(fake=fake_slack, settings=settings, clock=clock, http=http) as bot,
    ):
        await bot.declare()
    assert [event["event_action"] for event in pagerduty.events] == ["trigger"]

    await resolve_then_die(database_url, clock=clock)

    clock.advance(timedelta(seconds=20))
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(pagerduty)) as http,
        running_bot(fake=fake_slack, settings=settings, clock=clock, http=http) as bot,
    ):
        await stay_up(bot, clock, every=timedelta(seconds=30), times=10)  # up for five minutes
    actions = [event["event_action"] for event in pagerduty.events]
    assert actions == ["trigger", "resolve"], "PagerDuty still pages people for a resolved incident"
