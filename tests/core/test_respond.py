"""Listeners' replies go to response_url through the bot's one HTTP client (`bot.slack.respond`)."""

from __future__ import annotations

import httpx
from slack_sdk.models.blocks import DividerBlock

from bot.slack.respond import message_of
from tests.harness import BotHarness


async def test_a_reply_is_posted_with_the_shared_client_not_a_session_of_its_own(bot: BotHarness) -> None:
    posted: list[str] = []

    async def seen(request: httpx.Request) -> None:
        posted.append(f"{request.method} {request.url.path}")

    bot.deps.http.event_hooks["request"].append(seen)
    await bot.declare("P3 Checkout latency")
    await bot.command("list")
    replies = [p for p in posted if "/respond/" in p]
    assert len(replies) == 2 and all(p.startswith("POST ") for p in replies)
    assert "INC-1" in bot.replies()[0] and "INC-1" in bot.last_reply()


def test_a_message_keeps_the_fields_given_and_turns_blocks_into_dicts() -> None:
    message = message_of(text="hi", blocks=[DividerBlock(), {"type": "divider"}], response_type=None, thread_ts=None)
    assert message == {"text": "hi", "blocks": [{"type": "divider"}, {"type": "divider"}]}
