"""What the post-mortem says of an acknowledgement made for someone else's page, through the real app."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from tests.escalation.slack.conftest import button_values, page_dms
from tests.harness import BotHarness

PAGES: dict[str, Any] = {"escalation": {"levels": [{"name": "On-call", "after": "0m", "notify": ["U0LEAD"]}]}}


def _document(bot: BotHarness) -> str:
    [*_, last] = [f for f in bot.fake.files.values() if f.completed]
    return (last.content or b"").decode("utf-8")


@pytest.mark.parametrize("bot_config", [PAGES])
async def test_an_ack_of_someone_else_s_page_says_whose_page_in_the_escalations(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Erin pressed Acknowledge on the page sent to the lead: the escalations table said only "first
    acknowledgement" by Erin, who was never paged, so it read as if nobody answered the page."""
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    assert bot.deps.escalator is not None
    await bot.deps.escalator.run_due()
    await bot.settle()
    (dm,) = page_dms(bot.fake, "U0LEAD")
    action, value = button_values(dm)[0]
    clock.advance(timedelta(minutes=3))
    await bot.click(action, value, user="U0ERIN", channel=None)
    assert (await bot.incident(incident.id or 0)).acknowledged_by == "U0ERIN"
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve rolled back", channel=channel, user="U0ERIN")
    document = _document(bot)
    row = next(line for line in document.splitlines() if "| ack |" in line)
    assert row.endswith("| @U0ERIN | first acknowledgement, of the page to @lead |"), row
