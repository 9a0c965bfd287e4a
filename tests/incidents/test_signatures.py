"""Bolt's request verification stays on: unsigned, forged and stale requests are refused."""

from __future__ import annotations

import time

from tests import slack_requests as req
from tests.harness import SECRET, BotHarness


async def _declare_request(bot: BotHarness, **kwargs: object) -> tuple[str, dict[str, str]]:
    return req.slash_command(
        "/incident",
        "declare P1 forged",
        secret=str(kwargs.pop("secret", SECRET)),
        response_url=bot.fake.response_url(),
        **kwargs,  # type: ignore[arg-type]
    )


async def test_missing_signature_is_refused(bot: BotHarness) -> None:
    body, headers = await _declare_request(bot)
    headers = {k: v for k, v in headers.items() if k != "X-Slack-Signature"}
    assert (await bot.post(body, headers)).status_code == 401


async def test_wrong_signature_is_refused(bot: BotHarness) -> None:
    body, headers = await _declare_request(bot, secret="not-the-secret")
    assert (await bot.post(body, headers)).status_code == 401


async def test_tampered_body_is_refused(bot: BotHarness) -> None:
    body, headers = await _declare_request(bot)
    assert (await bot.post(body.replace("forged", "tampered"), headers)).status_code == 401


async def test_request_older_than_five_minutes_is_refused(bot: BotHarness) -> None:
    body, headers = await _declare_request(bot, timestamp=int(time.time()) - 6 * 60)
    assert (await bot.post(body, headers)).status_code == 401


async def test_nothing_is_stored_for_refused_requests_and_a_valid_one_passes(bot: BotHarness) -> None:
    body, headers = await _declare_request(bot, secret="nope")
    await bot.post(body, headers)
    await bot.settle()
    assert bot.fake.calls_to("conversations.create") == []
    body, headers = await _declare_request(bot)
    assert (await bot.post(body, headers)).status_code == 200
    await bot.settle()
    assert len(bot.fake.calls_to("conversations.create")) == 1
