"""kill -9 right after a resolve is committed, before the channel heard of it, then a restart: the pinned
summary, the topic and the announcement stop saying the incident is still being investigated."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.crash import resolve_then_die, stay_up
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot

CONFIG = {"channels": {"announcements": "C0INCIDENTS"}}


async def test_a_resolve_interrupted_by_a_crash_still_shows_as_resolved(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        incident = await bot.declare("P1 Checkout is down")
    channel = fake_slack.channels[incident.channel_id or ""]
    summary = channel.find(incident.summary_ts or "")
    announcement = fake_slack.channels["C0INCIDENTS"].find(incident.announcement_ts or "")
    assert summary is not None and announcement is not None
    assert "investigating" in summary.text and "investigating" in channel.topic

    await resolve_then_die(settings.database_url, clock=clock)
    clock.advance(timedelta(seconds=30))
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        await stay_up(bot, clock, every=timedelta(minutes=1), times=5)
    assert summary.text.endswith(": resolved"), summary.text
    assert " · resolved · " in channel.topic, channel.topic
    assert "resolved" in announcement.text.lower(), announcement.text
