"""The database goes away for a moment while someone runs a command.

The user must get a clear answer (not Slack's "dispatch_failed"), and the incident record must
stay whole: either the change happened with its timeline event, or nothing happened.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.incidents.models import Incident, Status
from bot.timeline.models import Kind, TimelineEvent
from tests.fault.support import DatabaseOutage, OutageAfterChannel, count, unreachable_url
from tests.harness import BotHarness


@pytest.fixture
async def outage(bot: BotHarness, database_url: str, tmp_path: Path) -> AsyncIterator[DatabaseOutage]:
    down = DatabaseOutage(bot.deps, unreachable_url(database_url, str(tmp_path)))
    yield down
    await down.close()


def _user_was_told(bot: BotHarness, response: httpx.Response, replies_before: int) -> str:
    """The answer the user saw: the ack body or a response_url message. Fails when there was none.

    The declaration itself (🚨) is for the whole channel; an error never is.
    """
    assert response.status_code == 200, f"HTTP {response.status_code}: Slack shows the user 'dispatch_failed'"
    texts = [r for r in bot.replies()[replies_before:]]
    if response.text:
        body: dict[str, Any] = json.loads(response.text)
        texts.insert(0, str(body.get("text") or "") + str(body.get("blocks") or ""))
    assert texts, "the user got no answer at all"
    for body in bot.fake.responses[replies_before:]:
        if not str(body.get("text") or "").startswith("🚨"):
            assert body.get("response_type") != "in_channel", "an error must not be posted for the whole channel"
    return "\n".join(texts)


async def test_declare_while_the_database_is_down_is_refused_cleanly(bot: BotHarness, outage: DatabaseOutage) -> None:
    with outage.window():
        response = await bot.command("declare P1 Checkout is down")
    told = _user_was_told(bot, response, 0)
    assert "again" in told.lower(), told
    assert "declared" not in told.lower(), told
    assert await count(bot.deps, Incident) == 0
    assert [c.name for c in bot.fake.channels.values() if c.name.startswith("inc-")] == []
    assert bot.fake.calls_to("chat.postMessage") == []
    # And once it is back, the same command works.
    incident = await bot.declare()
    assert incident.channel_id and incident.ref == "INC-1"


async def test_resolve_while_the_database_is_down_changes_nothing(bot: BotHarness, outage: DatabaseOutage) -> None:
    incident = await bot.declare()
    events = await count(bot.deps, TimelineEvent)
    posted = len(bot.fake.calls_to("chat.postMessage"))
    before = len(bot.fake.responses)
    with outage.window():
        response = await bot.command("resolve rolled back", channel=incident.channel_id or "")
    _user_was_told(bot, response, before)
    after = await bot.incident(1)
    assert after.status == Status.INVESTIGATING and after.resolved_at is None and after.resolution == ""
    assert await count(bot.deps, TimelineEvent) == events
    assert len(bot.fake.calls_to("chat.postMessage")) == posted, "no 'resolved' notice for an unresolved incident"
    await bot.command("resolve rolled back", channel=incident.channel_id or "")
    assert (await bot.incident(1)).status == Status.RESOLVED


async def test_acknowledge_button_while_the_database_is_down(bot: BotHarness, outage: DatabaseOutage) -> None:
    incident = await bot.declare()
    before = len(bot.fake.responses)
    with outage.window():
        response = await bot.click("incident_ack", "1", channel=incident.channel_id, user="U0BOB")
    _user_was_told(bot, response, before)
    assert (await bot.incident(1)).acknowledged_at is None
    assert await count(bot.deps, TimelineEvent, TimelineEvent.kind == Kind.ACK) == 0


async def test_database_lost_in_the_middle_of_declare(bot: BotHarness, outage: DatabaseOutage) -> None:
    """The row is committed, Slack made the channel, then saving the channel fails.

    The incident must not be left half set up without anyone knowing: the user is told INC-1
    exists, and once the database is back one Retry setup finishes it with the channel Slack made.
    """
    bot.deps.chat = OutageAfterChannel(bot.deps.chat, outage)  # type: ignore[assignment]
    try:
        response = await bot.command("declare P1 Checkout is down")
    finally:
        outage.end()
        bot.deps.chat = bot.deps.chat.real  # type: ignore[attr-defined]
    told = _user_was_told(bot, response, 0)
    assert "INC-1" in told, told
    incident = await bot.incident(1)
    assert [e.kind for e in await bot.timeline(1)][0] == Kind.DECLARED
    await bot.click("incident_retry_setup", "1", channel="C0GENERAL")
    incident = await bot.incident(1)
    channels = [c.name for c in bot.fake.channels.values() if c.name.startswith("inc-")]
    assert incident.channel_id and incident.setup_error is None, incident.setup_error
    assert channels == [incident.channel_name], f"orphaned channel(s): {channels}"


async def test_channel_message_during_an_outage_reaches_the_timeline(bot: BotHarness, outage: DatabaseOutage) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    event = {
        "type": "message",
        "channel": incident.channel_id,
        "user": "U0BOB",
        "text": "dns fixed",
        "ts": "1.000010",
    }
    with outage.window():
        first = await bot.event(event, event_id="EvBlip")
    if first.status_code >= 300:
        # What Slack does when the delivery was not acknowledged.
        await bot.event(event, event_id="EvBlip", retry_num=1)
    stored = [e.text for e in await bot.timeline(1) if e.kind == Kind.MESSAGE]
    assert stored == ["dns fixed"]
