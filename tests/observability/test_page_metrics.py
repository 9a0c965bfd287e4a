"""Pages counted in /metrics as the escalation domain sends them, through the real app."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.harness import BotHarness


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
