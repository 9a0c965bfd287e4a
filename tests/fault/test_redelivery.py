"""Slack redelivers events (same `event_id`, `X-Slack-Retry-Num`), and a request can arrive twice.

Each delivery must change the database at most once: one timeline message, one key mark.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlmodel import select

from bot.incidents.models import Incident
from bot.slack.listeners import replay
from bot.timeline.models import Kind, ProcessedEvent, ProcessedRequest, TimelineEvent
from tests import slack_requests as req
from tests.fault.support import count
from tests.harness import SECRET, BotHarness


def _message(channel: str, ts: str, text: str = "db primary is at 100% cpu") -> dict[str, object]:
    return {
        "type": "message",
        "channel": channel,
        "user": "U0BOB",
        "text": text,
        "ts": ts,
        "channel_type": "channel",
    }


def _pin(channel: str, ts: str, text: str) -> dict[str, object]:
    """U0CAROL pins the message at `ts`."""
    return {
        "type": "pin_added",
        "user": "U0CAROL",
        "channel_id": channel,
        "item": {"type": "message", "channel": channel, "message": {"ts": ts, "text": text}},
    }


async def _messages(bot: BotHarness, incident_id: int) -> list[TimelineEvent]:
    return [e for e in await bot.timeline(incident_id) if e.kind == Kind.MESSAGE]


async def test_event_retries_with_the_same_event_id_store_one_message(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    event = _message(incident.channel_id, "1700000000.000100")
    for retry in (None, 1, 2, 3):
        response = await bot.event(event, event_id="EvSame1", retry_num=retry)
        assert response.status_code == 200
    stored = await _messages(bot, incident.id or 0)
    assert [e.text for e in stored] == ["db primary is at 100% cpu"]


async def test_concurrent_deliveries_of_one_event_store_one_message(bot: BotHarness) -> None:
    """The first delivery is still running when the retry lands (Slack retries after 3 s unanswered)."""
    incident = await bot.declare()
    assert incident.channel_id
    event = _message(incident.channel_id, "1700000000.000200")
    responses = await asyncio.gather(
        *(bot.event(event, event_id="EvSame2", retry_num=n or None, settle=False) for n in range(6))
    )
    assert {r.status_code for r in responses} == {200}
    await bot.settle()
    assert len(await _messages(bot, incident.id or 0)) == 1


async def test_byte_identical_replay_of_a_signed_event_is_dropped(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    body, headers = req.event_callback(
        _message(incident.channel_id, "1700000000.000300"), secret=SECRET, event_id="EvReplay"
    )
    for _ in range(3):
        response = await bot.post(body, headers)
        assert response.status_code == 200
    await bot.settle()
    assert len(await _messages(bot, incident.id or 0)) == 1


async def test_same_message_under_a_new_event_id_is_still_stored_once(bot: BotHarness) -> None:
    """The same message as two events (e.g. after an app reinstall): the (channel, ts) key holds."""
    incident = await bot.declare()
    assert incident.channel_id
    event = _message(incident.channel_id, "1700000000.000400")
    await bot.event(event, event_id="EvA")
    await bot.event(event, event_id="EvB")
    assert len(await _messages(bot, incident.id or 0)) == 1


async def test_reaction_and_pin_retries_mark_one_key_event(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    ts = "1700000000.000500"
    await bot.event(_message(incident.channel_id, ts, "rolled back to v41"), event_id="EvMsg")
    reaction = {
        "type": "reaction_added",
        "user": "U0CAROL",
        "reaction": "pushpin",
        "item": {"type": "message", "channel": incident.channel_id, "ts": ts},
        "item_user": "U0BOB",
    }
    pin = _pin(incident.channel_id, ts, "rolled back to v41")
    for retry in (None, 1, 2):
        await bot.event(reaction, event_id="EvReact", retry_num=retry)
        await bot.event(pin, event_id="EvPin", retry_num=retry)
    stored = await _messages(bot, incident.id or 0)
    assert len(stored) == 1 and stored[0].key is True


async def test_late_retry_of_a_pin_does_not_undo_the_unpin(bot: BotHarness) -> None:
    """Pin, unpin, then Slack's retry of the pin arrives: applying it again would re-mark the message."""
    incident = await bot.declare()
    assert incident.channel_id
    ts = "1700000000.000600"
    await bot.event(_message(incident.channel_id, ts, "failover done"), event_id="EvMsg6")
    pin = _pin(incident.channel_id, ts, "failover done")
    await bot.event(pin, event_id="EvPin6")
    await bot.event(dict(pin, type="pin_removed"), event_id="EvUnpin6")
    await bot.event(pin, event_id="EvPin6", retry_num=1)
    stored = await _messages(bot, incident.id or 0)
    assert len(stored) == 1 and stored[0].key is False


async def test_byte_identical_replay_of_a_slash_command_declares_once(bot: BotHarness) -> None:
    body, headers = req.slash_command(
        "/incident",
        "declare P1 Payments are down",
        secret=SECRET,
        response_url=bot.fake.response_url("replay"),
    )
    for _ in range(2):
        response = await bot.post(body, headers)
        assert response.status_code == 200
    await bot.settle()
    assert await count(bot.deps, Incident) == 1
    assert len([c for c in bot.fake.channels.values() if c.name.startswith("inc-")]) == 1


async def test_a_slash_command_declaration_and_its_replay_at_once_declare_once_and_answer_once(bot: BotHarness) -> None:
    """The declaration's own INSERT carries the request's claim: two at once, one rolls back whole."""
    body, headers = req.slash_command(
        "/incident",
        "declare P2 Search is slow",
        secret=SECRET,
        response_url=bot.fake.response_url("twice"),
    )
    answers = await asyncio.gather(bot.post(body, headers), bot.post(body, headers))
    assert [a.status_code for a in answers] == [200, 200]
    await bot.settle()
    assert await count(bot.deps, Incident) == 1
    assert len([c for c in bot.fake.channels.values() if c.name.startswith("inc-")]) == 1
    replies = [r for r in bot.fake.responses if r["key"] == "twice"]
    assert len(replies) == 1 and "INC-1" in str(replies[0].get("text")), replies
    declared = [e for e in await bot.timeline(1) if e.kind == Kind.DECLARED]
    assert len(declared) == 1


async def test_a_replayed_declare_that_opens_the_form_or_is_refused_is_still_answered_once(bot: BotHarness) -> None:
    """`declare` with no title (the form) or a bad one (a usage reply) writes nothing to carry the claim:
    the listener claims it alone, so the replay is dropped as every other command's is."""
    for key, text in (("form", "declare"), ("usage", "declare P9")):
        body, headers = req.slash_command(
            "/incident", text, secret=SECRET, response_url=bot.fake.response_url(key), trigger_id=f"trig-{key}"
        )
        for _ in range(2):
            assert (await bot.post(body, headers)).status_code == 200
        await bot.settle()
    opened = [c for c in bot.fake.calls_to("views.open") if c.args.get("trigger_id") == "trig-form"]
    assert len(opened) == 1
    usage = [r for r in bot.fake.responses if r["key"] == "usage"]
    assert len(usage) == 1 and "P9" in str(usage[0].get("text")), usage
    assert await count(bot.deps, Incident) == 0


async def test_claims_older_than_slacks_retry_window_are_pruned_every_few_hundred(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without pruning the claim tables grow by a row per command, click and event for ever."""
    monkeypatch.setattr(replay, "PRUNE_EVERY", 3)
    now = bot.deps.clock.now()
    async with bot.deps.db.session() as session:
        session.add(ProcessedRequest(signature="old-request", received_at=now - timedelta(minutes=11)))
        session.add(ProcessedRequest(signature="recent-request", received_at=now - timedelta(minutes=9)))
        session.add(ProcessedEvent(event_id="EvOld", received_at=now - timedelta(hours=3)))
        session.add(ProcessedEvent(event_id="EvRecent", received_at=now - timedelta(minutes=30)))
        await session.commit()
    for n in range(2):
        await bot.command("list", user=f"U0LIST{n}")
    assert await count(bot.deps, ProcessedRequest) == 4 and await count(bot.deps, ProcessedEvent) == 2
    await bot.command("list", user="U0LIST2")  # the third claim since start prunes
    kept = [r.signature for r in await _all(bot, ProcessedRequest)]
    assert "old-request" not in kept and "recent-request" in kept and len(kept) == 4
    assert [e.event_id for e in await _all(bot, ProcessedEvent)] == ["EvRecent"]


async def _all(bot: BotHarness, model: Any) -> list[Any]:
    async with bot.deps.db.session() as session:
        return list((await session.exec(select(model))).all())
