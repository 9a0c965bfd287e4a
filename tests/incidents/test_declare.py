"""Declaring an incident through the real app, against the fake Slack."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from bot.incidents.models import Incident, Status
from tests.fault.support import unpace_channel_creation
from tests.harness import BotHarness


async def test_declare_by_text_creates_everything_in_order(bot: BotHarness) -> None:
    response = await bot.command("declare P1 service:api Checkout returns 500", user="U0ALICE")
    assert response.status_code == 200

    incident = await bot.incident(1)
    assert incident.title == "Checkout returns 500"
    assert incident.severity == "P1"
    assert incident.status == Status.INVESTIGATING
    assert incident.commander == "U0ALICE"

    channel = bot.fake.channel_by_name("inc-1-checkout-returns-500")
    assert channel is not None
    assert incident.channel_id == channel.id
    assert "U0ALICE" in channel.members
    assert "P1" in channel.topic and "investigating" in channel.topic
    summary = channel.messages[0]
    assert summary.ts == incident.summary_ts
    assert summary.ts in channel.pins
    action_ids = [e["action_id"] for b in summary.blocks or [] if b["type"] == "actions" for e in b["elements"]]
    assert action_ids == ["incident_ack", "incident_update_open", "incident_resolve_open"]
    announcement = bot.fake.messages("C0INCIDENTS")[-1]
    assert announcement.ts == incident.announcement_ts
    assert "INC-1" in str(announcement.blocks)
    kinds = [e.kind for e in await bot.timeline(1)]
    assert kinds[0] == "declared"
    assert "INC-1" in bot.replies()[0]


STORM = 8


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"escalation": {"levels": [{"name": "On-call", "after": "0s", "notify": ["U0LEAD"]}]}}


async def test_in_a_storm_each_declarations_effects_come_in_order(bot: BotHarness) -> None:
    """No writer queue or priority orders the work any more: each declaration's own effects still
    come in their order, with others interleaved (incident row, page DM not waiting for the channel,
    channel, invite, topic, summary, pin, announcement, then the page's mention after the summary)."""
    unpace_channel_creation(bot.deps)
    await asyncio.gather(*(bot.command(f"declare P1 Storm {n}", settle=False) for n in range(STORM)))
    await bot.settle()

    def mentions() -> int:
        return len([c for c in bot.fake.calls_to("chat.postMessage") if "📟" in str(c.args.get("text"))])

    for _ in range(200):  # the pages' mentions follow the channel-ready signal
        if mentions() == STORM:
            break
        await asyncio.sleep(0.05)

    calls = [c for c in bot.fake.calls if c.status == 200 and c.response.get("ok")]
    dm_channels = {c.id for c in bot.fake.channels.values() if c.is_im}

    def check_order(number: int, incident: Incident) -> None:
        cid, summary, announcement = incident.channel_id, incident.summary_ts, incident.announcement_ts
        assert cid and summary and announcement, f"INC-{number} not set up"

        def index(method: str, where: Callable[[Any], bool]) -> int:
            found = [i for i, c in enumerate(calls) if c.method == method and where(c)]
            assert found, f"INC-{number}: no {method}"
            return found[0]

        created = index("conversations.create", lambda c: c.response["channel"]["id"] == cid)
        invited = index("conversations.invite", lambda c: c.args.get("channel") == cid)
        topic = index("conversations.setTopic", lambda c: c.args.get("channel") == cid)
        posted = index("chat.postMessage", lambda c: c.response.get("ts") == summary)
        pinned = index("pins.add", lambda c: c.args.get("timestamp") == summary)
        announced = index("chat.postMessage", lambda c: c.response.get("ts") == announcement)
        paged = index(
            "chat.postMessage",
            lambda c: c.args.get("channel") in dm_channels and f"INC-{number} " in str(c.args.get("text")),
        )
        mentioned = index(
            "chat.postMessage", lambda c: c.args.get("channel") == cid and "📟" in str(c.args.get("text"))
        )
        assert created < invited < topic < posted < pinned < announced, f"INC-{number}'s setup out of order"
        assert posted < mentioned, f"INC-{number}: the page was mentioned before the pinned summary"
        assert paged < mentioned, f"INC-{number}: mentioned before its DM went out"

    for number in range(1, STORM + 1):
        check_order(number, await bot.incident(number))
        kinds = [e.kind for e in await bot.timeline(number)]
        assert kinds[0] == "declared"
    assert len([m for m in bot.fake.dms("U0LEAD") if "Paged for" in m.text]) == STORM, "each page once"
