"""Declaring an incident through the real app, against the fake Slack."""

from __future__ import annotations

from bot.incidents.models import Status
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
