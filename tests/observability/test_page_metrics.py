"""Pages counted in /metrics as the escalation domain sends them, through the real app."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import make_settings
from tests.fakes.pagerduty import FakePagerDuty
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"escalation": {"levels": [{"name": "On-call", "after": "0m", "notify": ["U0BOB"]}]}}


def _value(text: str, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", text, re.M)
    assert match, f"{name} missing from /metrics"
    return float(match.group(1))


async def test_a_page_sent_is_counted(bot: BotHarness) -> None:
    await bot.declare("P1 Checkout is down")
    text = (await bot.http.get(f"{bot.url}/metrics")).text
    assert _value(text, "incident_bot_pages_sent_total") == 1
    assert _value(text, "incident_bot_pages_failed_total") == 0


async def test_a_page_that_reaches_nobody_is_counted_failed(bot: BotHarness) -> None:
    bot.fake.fail("conversations.open", "user_not_found", count=5)  # the DM cannot be opened, for good
    await bot.declare("P1 Checkout is down")
    text = (await bot.http.get(f"{bot.url}/metrics")).text
    assert _value(text, "incident_bot_pages_sent_total") == 0
    assert _value(text, "incident_bot_pages_failed_total") == 1


async def test_a_page_only_pagerduty_took_is_counted_sent(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`oncall` with no rotation names nobody in Slack, but PagerDuty pages the on-call: that is a page."""
    monkeypatch.setenv("PAGERDUTY_ROUTING_KEY", "R0UTINGKEY")
    pagerduty = FakePagerDuty()
    config = {
        "escalation": {
            "levels": [{"name": "On-call", "after": "0m", "notify": ["oncall"]}],
            "pagerduty": {"api_url": "https://events.pagerduty.test/v2/enqueue"},
        }
    }
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(pagerduty)) as http,
        running_bot(fake=fake_slack, settings=settings, http=http) as bot,
    ):
        await bot.declare("P1 Checkout is down")
        text = (await bot.http.get(f"{bot.url}/metrics")).text
    assert [event["event_action"] for event in pagerduty.events] == ["trigger"]
    assert _value(text, "incident_bot_pages_sent_total") == 1
    assert _value(text, "incident_bot_pages_failed_total") == 0
