"""The fake Slack Web API's fault injection and tier-2 rate limit, through slack_sdk's real client and
its retry handler.

Why: the bot's tests trust these doubles; if the fake accepted what Slack rejects (or Bolt
could not parse our signed requests) every test built on them would pass for the wrong reason.
"""

from __future__ import annotations

import aiohttp
import pytest
from slack_sdk.errors import SlackApiError
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from tests.fakes.conftest import api_error
from tests.fakes.slack_api import FakeSlack

# ------------------------------------------------------------------ faults and rate limits


async def test_throttle_then_success_with_retry_handler(fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    retrying = AsyncWebClient(
        token=fake.bot_token,
        base_url=fake.url,
        retry_handlers=[AsyncRateLimitErrorRetryHandler(max_retry_count=1)],
    )
    fake.throttle("chat.postMessage", count=1, retry_after=0)
    await retrying.chat_postMessage(channel=general, text="after 429")
    statuses = [c.status for c in fake.calls_to("chat.postMessage")]
    assert statuses == [429, 200]
    assert [m.text for m in fake.messages(general)] == ["after 429"]


async def test_throttle_without_retry_surfaces_ratelimited(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.throttle("auth.test", retry_after=7)
    with pytest.raises(SlackApiError) as info:
        await client.auth_test()
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "7"
    assert info.value.response["error"] == "ratelimited"


async def test_fail_and_server_error(client: AsyncWebClient, fake: FakeSlack) -> None:
    fake.fail("conversations.create", "restricted_action", count=2)
    assert await api_error(client.conversations_create(name="a")) == "restricted_action"
    assert await api_error(client.conversations_create(name="a")) == "restricted_action"
    await client.conversations_create(name="a")
    fake.server_error("auth.test", status=503)
    with pytest.raises(SlackApiError) as info:
        await client.auth_test()
    assert info.value.response.status_code == 503


async def test_tier2_sliding_window(client: AsyncWebClient, fake: FakeSlack) -> None:
    now = [1000.0]
    fake.clock = lambda: now[0]
    fake.rate_limit_tier2 = True
    for i in range(20):
        await client.conversations_create(name=f"inc-{i}")
    with pytest.raises(SlackApiError) as info:
        await client.conversations_create(name="inc-20")
    assert info.value.response.status_code == 429
    assert info.value.response.headers["Retry-After"] == "60"
    now[0] += 60.5
    await client.conversations_create(name="inc-20")


async def test_disconnect_closes_the_connection_without_an_answer(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    fake.disconnect("chat.postMessage")  # slack_sdk sends it again once by itself
    await client.chat_postMessage(channel=general, text="after a drop")
    assert [c.status for c in fake.calls_to("chat.postMessage")] == [0, 200]
    fake.disconnect("chat.postMessage", count=2)
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await client.chat_postMessage(channel=general, text="never sent")
    assert [m.text for m in fake.messages(general)] == ["after a drop"], "Slack did nothing with a dropped call"


async def test_disconnect_after_acting_cuts_the_answer(client: AsyncWebClient, fake: FakeSlack) -> None:
    general = fake.add_channel("general")
    fake.disconnect("chat.postMessage", acted=True)
    with pytest.raises(aiohttp.ClientPayloadError):
        await client.chat_postMessage(channel=general, text="posted, unheard")
    assert [m.text for m in fake.messages(general)] == ["posted, unheard"]
    await client.chat_postMessage(channel=general, text="next")  # the next call is answered as usual
