"""kill -9 right after a channel setup released its lease (channel, summary, announcement saved),
before IncidentChannelReady's handlers ran, then a restart: the person paged while the channel was
being made is still invited and mentioned there, and the playbook still starts."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.signals import IncidentChannelReady, IncidentEvent
from tests.conftest import make_settings
from tests.crash import stay_up
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot

CONFIG = {"escalation": {"levels": [{"name": "On-call", "after": "0s", "notify": ["U0LEAD"]}]}}


async def test_a_crash_before_channel_ready_still_catches_the_channel_up(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        publish = bot.deps.bus.publish

        async def dies_after_the_setup(event: IncidentEvent) -> list[str]:
            if isinstance(event, IncidentChannelReady):
                raise asyncio.CancelledError  # kill -9: nothing after the setup's release runs
            return await publish(event)

        bot.deps.bus.publish = dies_after_the_setup  # type: ignore[method-assign]
        gate = fake_slack.hold("conversations.create")  # Slack makes the channel wait (tier 2)
        await bot.command("declare P1 service:api Checkout is down", settle=False)
        assert bot.deps.escalator is not None
        for _ in range(200):  # the page goes out meanwhile; its channel half waits for the channel
            if [p for p in await bot.deps.escalator.pages(1) if p.sent_at]:
                break
            await asyncio.sleep(0.02)
        gate.set()
        await bot.settle()
        incident = await bot.incident(1)
        assert incident.channel_id and incident.summary_ts and incident.setup_claimed_at is None
    channel = incident.channel_id
    assert "U0LEAD" not in fake_slack.channels[channel].members

    clock.advance(timedelta(minutes=5))
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        await stay_up(bot, clock, every=timedelta(seconds=30), times=10)  # the bot stays up; its sweeps run
        mentions = [m.text for m in fake_slack.messages(channel) if m.text.startswith("📟")]
        playbook = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    missing = []
    if "U0LEAD" not in fake_slack.channels[channel].members:
        missing.append("the paged on-call engineer was never invited to the channel")
    if mentions != ["📟 Paged level 1 (On-call): <@U0LEAD>"]:
        missing.append("the page was never mentioned in the channel")
    if not playbook:
        missing.append("the playbook never started")
    assert missing == []
