"""conversations.create is paced as Slack states tier 2: at most N calls in any window.

Timing here is asserted with lower bounds (a pacer that waits too little is the defect; waiting a
little longer on a busy machine is not) and a loose upper bound only where nothing should wait.
"""

from __future__ import annotations

import asyncio
import time

from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.slack.adapters.incidents import Pacer, SlackIncidentChat
from tests.fakes.slack_api import FakeSlack


async def test_the_first_calls_go_at_once_and_the_next_when_the_window_frees_a_place() -> None:
    pacer = Pacer(limit=3, window=2.0)
    started = time.monotonic()
    for _ in range(3):
        await pacer.acquire()
    assert time.monotonic() - started < 1.0, "the first `limit` calls do not wait"
    await pacer.acquire()
    assert time.monotonic() - started >= 2.0 * (1 + Pacer.MARGIN)


async def test_a_call_slack_refused_takes_a_place_in_the_window_when_it_is_retried() -> None:
    pacer = Pacer(limit=2, window=1.0)
    started = time.monotonic()
    await pacer.acquire()
    pacer.throttled(0.5)  # slack_sdk retries the refused call itself, half a second from now
    await pacer.acquire()
    assert time.monotonic() - started >= 1.0, "two calls were already booked in this window"


async def test_the_adapter_books_slacks_retry_of_a_refused_create(fake_slack: FakeSlack) -> None:
    client = AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.url)
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=3))
    chat = SlackIncidentChat(client, clock=SystemClock())
    chat.create_pacer = Pacer(limit=2, window=3.0)
    fake_slack.throttle("conversations.create", count=1, retry_after=1)
    started = time.monotonic()

    first = await chat.create_channel(name="inc-1-first", private=False)
    second = await chat.create_channel(name="inc-2-second", private=False)

    # The refusal and its retry were two calls in the window, so the second create waited for it.
    assert time.monotonic() - started >= 3.0
    assert [c.status for c in fake_slack.calls_to("conversations.create")] == [429, 200, 200]
    assert {first.name, second.name} == {"inc-1-first", "inc-2-second"}


async def test_waiters_go_in_order_of_arrival() -> None:
    pacer = Pacer(limit=1, window=0.2)
    order: list[int] = []

    async def call(n: int) -> None:
        await pacer.acquire()
        order.append(n)

    await asyncio.gather(*(call(n) for n in range(4)))
    assert order == [0, 1, 2, 3]
