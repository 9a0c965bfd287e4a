"""The front door acks slash commands and clicks before Bolt runs; forms still get Bolt's answer.

Bolt acks only once a listener calls `ack()` (it polls for that every 10 ms), after the whole
middleware chain and the delivery claim in the database. Under a burst that queued acks past
Slack's 3 s. These tests hold Bolt back with a middleware that waits for a signal: the ack must
arrive anyway.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
from prometheus_client.parser import text_string_to_metric_families
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.slack.front import FrontDoor, SocketModeDoor
from tests.harness import BotHarness


def hold_bolt(bot: BotHarness) -> tuple[asyncio.Event, list[str], asyncio.Event]:
    """A middleware that parks every request until released.

    Returns (release, what it saw, arrived): `arrived` is set when the first request reaches it.
    """
    release, arrived = asyncio.Event(), asyncio.Event()
    seen: list[str] = []

    @bot.app.middleware
    async def parked(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]) -> Any:
        seen.append(str(req.body.get("command") or req.body.get("type")))
        arrived.set()
        await release.wait()
        return await next()

    return release, seen, arrived


async def test_a_command_is_acked_while_bolt_is_still_busy(bot: BotHarness) -> None:
    release, seen, arrived = hold_bolt(bot)
    try:
        response = await asyncio.wait_for(bot.command("list", settle=False), timeout=5)
        assert (response.status_code, response.text) == (200, "")
        await asyncio.wait_for(arrived.wait(), 5)  # Bolt has it only after the ack: its chain runs later
        assert seen == ["/incident"] and bot.fake.responses == []  # the listener has not run
    finally:
        release.set()
    await bot.settle()
    assert "0 open incidents" in bot.last_reply()


async def test_a_click_is_acked_while_bolt_is_still_busy(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Search is slow")
    release, _, _ = hold_bolt(bot)
    try:
        response = await asyncio.wait_for(
            bot.click("incident_ack", str(incident.id), channel=incident.channel_id, settle=False), timeout=5
        )
        assert (response.status_code, response.text) == (200, "")
        assert (await bot.incident(1)).acknowledged_by is None
    finally:
        release.set()
    await bot.settle()
    assert (await bot.incident(1)).acknowledged_by == "U0ALICE"


async def test_a_message_in_a_commands_ack_goes_to_response_url_once(bot: BotHarness) -> None:
    response = await bot.command("frobnicate the database")
    assert (response.status_code, response.text) == (200, "")
    [reply] = bot.fake.responses
    assert reply["response_type"] == "ephemeral"
    assert "Usage" in bot.last_reply() or "/incident help" in bot.last_reply()


async def test_a_forms_validation_errors_still_come_back_in_its_ack(bot: BotHarness) -> None:
    release, seen, _ = hold_bolt(bot)
    release.set()  # forms are answered by Bolt itself: nothing to hold
    values = {
        "title": {"value": {"type": "plain_text_input", "value": ""}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": "P1"}}},
    }
    response = await bot.submit("incident_declare", values, private_metadata="C0GENERAL")
    assert response.json()["response_action"] == "errors" and "title" in response.json()["errors"]
    assert seen == ["view_submission"]


async def test_each_command_is_timed_once_in_the_ack_histogram(bot: BotHarness) -> None:
    async def acked_commands() -> float:
        async with httpx.AsyncClient() as client:
            text = (await client.get(f"{bot.url}/metrics")).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "incident_bot_ack_latency_seconds_count" and sample.labels.get("kind") == "command":
                    return sample.value
        return 0.0

    before = await acked_commands()
    await bot.command("list")
    await bot.command("help")
    assert await acked_commands() == before + 2


async def test_over_socket_mode_a_command_is_acked_first_and_reaches_bolt_with_its_retry_headers(
    bot: BotHarness,
) -> None:
    """The door builds Bolt's request itself (Bolt's public `AsyncBoltRequest`), as Bolt's handler would."""
    seen: list[tuple[str | None, str | None]] = []
    answered: list[str] = []
    acked_before_bolt: list[bool] = []

    @bot.app.middleware
    async def look(req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]) -> Any:
        acked_before_bolt.append(answered == ["env-1"])
        headers = req.headers
        seen.append((headers.get("x-slack-retry-num", [None])[0], headers.get("x-slack-retry-reason", [None])[0]))
        return await next()

    class Socket:
        logger = logging.getLogger("test")

        async def send_socket_mode_response(self, response: SocketModeResponse) -> None:
            answered.append(response.envelope_id)

    door = SocketModeDoor(bot.app, bot.fake.app_token, FrontDoor(bot.app, bot.deps, signing_secret=None))
    payload = {
        "command": "/incident",
        "text": "list",
        "user_id": "U0BOB",
        "channel_id": "C0GENERAL",
        "team_id": "T0TEST",
        "response_url": f"{bot.fake.url}/response/1",
        "trigger_id": "trigger-1",
    }
    request = SocketModeRequest(
        type="slash_commands", envelope_id="env-1", payload=payload, retry_attempt=1, retry_reason="timeout"
    )
    try:
        await door.handle(Socket(), request)  # type: ignore[arg-type]
    finally:
        await door.client.close()  # never connected; stops its message loop
    await bot.settle()
    assert answered == ["env-1"]
    assert acked_before_bolt == [True]
    assert seen == [("1", "timeout")]
