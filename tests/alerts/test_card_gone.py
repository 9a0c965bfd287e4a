"""The alert card in #alerts is not where responders are: losing it must not silence the incident channel."""

from __future__ import annotations

from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, action_ids, alert_messages, groups, rendered, send
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return AUTO


async def _declared(bot: BotHarness) -> tuple[dict[str, Any], str]:
    firing = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([firing]))
    return firing, (await bot.incident(1)).channel_id or ""


async def test_a_deleted_alert_card_is_posted_again_and_the_incident_still_hears_the_alert_cleared(
    bot: BotHarness,
) -> None:
    """Someone tidied #alerts and deleted the card: every later sync failed on chat.update
    (message_not_found), so the group stayed pending for ever and the incident channel never
    got the resolve offer."""
    firing, channel = await _declared(bot)
    [card] = alert_messages(bot)
    # The fake lets only the author delete; in Slack a workspace admin deletes the bot's message.
    await AsyncWebClient(token=bot.fake.bot_token, base_url=bot.fake.url).chat_delete(channel="C0ALERTS", ts=card.ts)
    assert alert_messages(bot) == []

    await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]))
    assert action_ids(bot.fake.messages(channel)[-1]) == ["alert_resolve_incident"]
    [again] = alert_messages(bot)
    assert "RESOLVED" in rendered(again).upper() and "INC-1" in rendered(again)
    [group] = await groups(bot)
    assert not group.pending and group.message_ts == again.ts


async def test_a_card_that_cannot_be_updated_does_not_keep_the_offer_from_the_incident_channel(
    bot: BotHarness,
) -> None:
    """#alerts archived or the bot removed from it: the card is stuck, the incident channel is not."""
    firing, channel = await _declared(bot)
    bot.fake.fail("chat.update", "is_archived", count=100)
    await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]))
    assert action_ids(bot.fake.messages(channel)[-1]) == ["alert_resolve_incident"]
    [group] = await groups(bot)
    assert group.pending and "is_archived" in (group.last_error or "")  # the card is retried
