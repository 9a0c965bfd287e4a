"""JSON logs: one object per line, a request id on everything a request causes, secrets never written."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from bot import logs
from tests.alerts import payloads as p
from tests.alerts.helpers import send
from tests.harness import BotHarness


@pytest.fixture
def captured() -> Iterator[io.StringIO]:
    """The root logger writing JSON lines to a buffer, as `logs.configure` sets it up."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.RequestIdFilter())
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(old_level)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


def test_tokens_are_redacted_in_messages_extras_and_tracebacks(captured: io.StringIO) -> None:
    log = logging.getLogger("bot.test")
    bot_token = "xoxb-1234567890-0987654321-AbCdEfGhIjKlMnOpQrStUvWx"
    log.info("calling Slack with %s and xapp-1-A0B1C2-123-abcdef", bot_token)
    log.info("GET https://hooks.example.com/x?token=hunter2hunter2&a=1 Authorization: Bearer eyJhbGciOi.abc.def")
    log.warning("refresh", extra={"token": "xoxe.xoxp-1-MIIEvQIBADANBgkqhkiG9w0BAQEFAASC", "user": "U0ALICE"})
    try:
        raise RuntimeError(f"Slack said no to {bot_token}")
    except RuntimeError:
        log.exception("failed")
    out = captured.getvalue()
    for secret in (
        bot_token,
        "xapp-1-A0B1C2-123-abcdef",
        "hunter2hunter2",
        "eyJhbGciOi.abc.def",
        "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
    ):
        assert secret not in out
    # This test's lines only: a driver thread an earlier test left closing may log (DEBUG) meanwhile.
    entries = [e for e in lines(captured) if e["logger"] == "bot.test"]
    assert str(entries[0]["message"]).startswith("calling Slack with xoxb-…redacted")
    assert entries[2]["user"] == "U0ALICE"
    assert "redacted" in str(entries[3]["exception"])


def test_configured_secrets_are_redacted_whatever_their_shape(captured: io.StringIO) -> None:
    logs.register_secrets(["correct-horse-battery-staple", None, "short"])
    logging.getLogger("bot.test").error("the alerts token correct-horse-battery-staple leaked; short stays")
    entry = next(e for e in lines(captured) if e["logger"] == "bot.test")
    assert "correct-horse-battery-staple" not in str(entry["message"])
    assert "short stays" in str(entry["message"])


def test_request_id_is_stamped_from_the_context(captured: io.StringIO) -> None:
    token = logs.bind_request_id("req-42")
    try:
        logging.getLogger("bot.test").info("inside")
    finally:
        logs.request_id.reset(token)
    logging.getLogger("bot.test").info("outside")
    inside, outside = [e for e in lines(captured) if e["logger"] == "bot.test"]
    assert inside["request_id"] == "req-42"
    assert "request_id" not in outside


async def test_every_line_a_slack_request_causes_carries_its_request_id(bot: BotHarness, captured: io.StringIO) -> None:
    response = await bot.command("declare P1 Checkout is down")
    rid = response.headers["X-Request-ID"]
    assert rid
    declared = [e for e in lines(captured) if e["logger"] == "bot.incidents.flows" and "declared" in str(e["message"])]
    assert declared and all(e["request_id"] == rid for e in declared)
    # ...including work done after the ack, and a second request gets its own id.
    other = await bot.command("list")
    assert other.headers["X-Request-ID"] != rid


async def test_alert_webhooks_keep_the_senders_request_id(bot: BotHarness, captured: io.StringIO) -> None:
    response = await send(bot, p.alertmanager([p.am_alert()]), headers={"X-Request-ID": "am-delivery-7"})
    assert response.headers["X-Request-ID"] == "am-delivery-7"
    stored = [e for e in lines(captured) if e["logger"] == "bot.alerts.flows"]
    assert stored and all(e["request_id"] == "am-delivery-7" for e in stored)
    bad = await send(bot, p.alertmanager([p.am_alert()]), headers={"X-Request-ID": "no spaces <allowed>"})
    assert bad.headers["X-Request-ID"] != "no spaces <allowed>"


async def test_the_bot_token_never_reaches_the_logs(bot: BotHarness, captured: io.StringIO) -> None:
    # The Web API client and Bolt log through these (bot/slack/app.py), at DEBUG every request and response.
    libraries = [logging.getLogger(name) for name in ("bot.slack.web", "bot.slack.bolt", "slack_sdk", "slack_bolt")]
    levels = [logger.level for logger in libraries]
    for logger in libraries:
        logger.setLevel(logging.DEBUG)
    try:
        await bot.declare("P1 Checkout is down")
        bot.fake.fail("chat.postMessage", "invalid_auth")
        await bot.command("note checking", channel=(await bot.incident(1)).channel_id or "")
    finally:
        for logger, level in zip(libraries, levels, strict=True):
            logger.setLevel(level)
    out = captured.getvalue()
    assert "Sending a request" in out and "Received the following response" in out  # the client's DEBUG lines
    assert bot.fake.bot_token not in out
    assert "test-signing-secret" not in out
