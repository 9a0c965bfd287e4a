"""`/incident postmortem done` marks the post-mortem finished, which stops the 24 h chase."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"escalation": {"levels": [{"name": "Lead", "after": "0m", "notify": ["U0LEAD"]}]}}


async def _after(bot: BotHarness, clock: FakeClock, delta: timedelta) -> None:
    clock.advance(delta)
    assert bot.deps.scheduler is not None
    await bot.deps.scheduler.run()
    await bot.settle()


def _chases(bot: BotHarness, channel: str) -> list[str]:
    return [m.text for m in bot.fake.messages(channel) if "post-mortem is not finished" in (m.text or "")]


@pytest.mark.parametrize("finish", [True, False])
async def test_finished_postmortem_is_not_chased(bot: BotHarness, clock: FakeClock, finish: bool) -> None:
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id
    assert channel
    await bot.command("resolve cert renewed", channel=channel)
    if finish:
        await bot.command("postmortem done", channel=channel, user="U0BOB")
        assert "marked finished" in bot.last_reply()
        event = [e for e in await bot.timeline(1) if e.kind == "postmortem"][-1]
        assert event.data == {"finished": True} and event.actor == "U0BOB"
    await _after(bot, clock, timedelta(hours=25))
    assert len(_chases(bot, channel)) == (0 if finish else 1)


async def test_postmortem_with_other_words_gets_usage(bot: BotHarness) -> None:
    incident = await bot.declare("P3 Slow search")
    await bot.command("postmortem please", channel=incident.channel_id or "")
    assert "/incident postmortem done" in bot.last_reply()


async def test_action_item_owner_is_kept_apart_from_the_text(bot: BotHarness) -> None:
    incident = await bot.declare("P3 Slow search")
    await bot.command("action add an index on orders.created_at <@U0BOB|bob>", channel=incident.channel_id or "")
    from bot.incidents import service

    async with bot.deps.db.session() as session:
        (item,) = await service.action_items(session, incident_id=1)
    assert (item.text, item.owner) == ("add an index on orders.created_at", "U0BOB")


async def test_postmortem_done_before_resolve_is_refused_and_the_chase_still_comes(
    bot: BotHarness, clock: FakeClock
) -> None:
    """A post-mortem cannot be finished while the incident is open: marking it then would silence the
    reminder due 24 h after the resolve, before anyone wrote a line."""
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id
    assert channel
    await bot.command("postmortem done", channel=channel, user="U0BOB")
    assert "still open" in bot.last_reply() and "/incident resolve" in bot.last_reply()
    assert [e for e in await bot.timeline(1) if e.kind == "postmortem"] == []
    await bot.command("resolve cert renewed", channel=channel)
    await _after(bot, clock, timedelta(hours=25))
    assert len(_chases(bot, channel)) == 1
