"""Requests that did not come from Slack, or came too late, change nothing.

Slack signs each request with `v0=hex(hmac_sha256(secret, "v0:{ts}:{body}"))`; a request whose
signature is wrong or missing, or whose timestamp is more than five minutes off, must be refused
(401) before any listener runs: no incident, no Slack call, no reply.
"""

from __future__ import annotations

import time

import pytest

from bot.incidents.models import Incident
from bot.timeline.models import TimelineEvent
from tests import slack_requests as req
from tests.fault.support import bot_errors, count
from tests.harness import SECRET, BotHarness


def _declare(bot: BotHarness, *, secret: str = SECRET, timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    return req.slash_command(
        "/incident",
        "declare P1 Checkout is down",
        secret=secret,
        response_url=bot.fake.response_url("forged"),
        timestamp=timestamp,
    )


def _message(channel: str | None, text: str, ts: str) -> dict[str, object]:
    return {"type": "message", "channel": channel, "user": "U0BOB", "text": text, "ts": ts}


async def _nothing_happened(bot: BotHarness) -> None:
    await bot.settle()
    assert await count(bot.deps, Incident) == 0
    assert await count(bot.deps, TimelineEvent) == 0
    assert bot.fake.calls == [], [c.method for c in bot.fake.calls]
    assert bot.fake.responses == []


async def _refused(bot: BotHarness, body: str, headers: dict[str, str]) -> None:
    response = await bot.post(body, headers)
    assert response.status_code == 401, (response.status_code, response.text)
    await _nothing_happened(bot)


async def test_signed_with_another_secret_is_refused(bot: BotHarness) -> None:
    await _refused(bot, *_declare(bot, secret="not-the-signing-secret"))


async def test_missing_signature_is_refused(bot: BotHarness) -> None:
    body, headers = _declare(bot)
    del headers["X-Slack-Signature"]
    await _refused(bot, body, headers)


async def test_missing_timestamp_is_refused(bot: BotHarness) -> None:
    body, headers = _declare(bot)
    del headers["X-Slack-Request-Timestamp"]
    await _refused(bot, body, headers)


@pytest.mark.parametrize(
    "timestamp",
    [
        pytest.param("yesterday"),
        pytest.param(""),
        pytest.param("1e9"),
        "-1",
        "99999999999999999999",
    ],
)
async def test_malformed_timestamp_is_refused_not_crashed(bot: BotHarness, timestamp: str) -> None:
    body, headers = _declare(bot)
    headers["X-Slack-Request-Timestamp"] = timestamp
    with bot_errors() as errors:
        await _refused(bot, body, headers)
    assert not errors.records, errors.describe()


async def test_body_changed_after_signing_is_refused(bot: BotHarness) -> None:
    body, headers = _declare(bot)
    tampered = body.replace("Checkout+is+down", "Checkout+is+fine")
    assert tampered != body
    await _refused(bot, tampered, headers)


@pytest.mark.parametrize("age", [301, 3600, -310])
async def test_stale_or_future_timestamp_is_refused_even_when_correctly_signed(bot: BotHarness, age: int) -> None:
    """Older than five minutes (or as far in the future): a captured request cannot be replayed later.

    The future case keeps a margin: the timestamp is whole seconds (`int(time.time())`, up to 1 s
    early), so "301 s ahead" could be read as 300.x s or less, which Slack's rule accepts (CI saw it once).
    """
    await _refused(bot, *_declare(bot, timestamp=int(time.time()) - age))


async def test_within_five_minutes_is_accepted(bot: BotHarness) -> None:
    """The other side of the boundary, so the refusals above are refusals of age, not of signing."""
    response = await bot.post(*_declare(bot, timestamp=int(time.time()) - 240))
    assert response.status_code == 200
    await bot.settle()
    assert await count(bot.deps, Incident) == 1


async def test_forged_event_and_interaction_are_refused(bot: BotHarness) -> None:
    incident = await bot.declare()
    calls = len(bot.fake.calls)
    responses = len(bot.fake.responses)
    events = await count(bot.deps, TimelineEvent)
    message = _message(incident.channel_id, "forged", "1.000001")
    for body, headers in (
        req.event_callback(message, secret="wrong", event_id="EvForged"),
        req.block_actions("incident_ack", str(incident.id), secret="wrong", channel_id=incident.channel_id),
        req.view_submission("incident_resolve", {}, secret="wrong", private_metadata=str(incident.id)),
        req.url_verification("challenge-token", secret="wrong"),
    ):
        response = await bot.post(body, headers)
        assert response.status_code == 401, body[:80]
    await bot.settle()
    after = await bot.incident(incident.id or 0)
    assert after.acknowledged_at is None and after.resolved_at is None
    assert await count(bot.deps, TimelineEvent) == events
    assert len(bot.fake.calls) == calls and len(bot.fake.responses) == responses


async def test_stale_replay_of_an_event_is_refused(bot: BotHarness) -> None:
    incident = await bot.declare()
    events = await count(bot.deps, TimelineEvent)
    message = _message(incident.channel_id, "old news", "1.000002")
    body, headers = req.event_callback(message, secret=SECRET, event_id="EvOld", timestamp=int(time.time()) - 600)
    response = await bot.post(body, headers)
    assert response.status_code == 401
    await bot.settle()
    assert await count(bot.deps, TimelineEvent) == events
