"""Times the bot says in Slack are Slack's date tokens, which each reader sees in their own time zone
(an on-call engineer in Berlin at 3 a.m. should not convert from UTC), with the UTC text as the
fallback. What is stored (the timeline, read by the post-mortem) keeps its UTC text."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from tests.harness import BotHarness, slack_date
from tests.postmortem.seed import T0


async def test_a_corrected_impact_start_is_said_in_each_reader_s_time_zone(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=3))
    await bot.command("started -25m", channel=channel, user="U0BOB")

    started = T0 - timedelta(minutes=22)
    assert f"impact started at {slack_date(started)}; time to detect 22m 00s." in bot.last_reply(), bot.last_reply()
    notices = [m.text for m in bot.fake.messages(channel) if "corrected the impact start" in m.text]
    assert notices == [
        f"⏱️ <@U0BOB> corrected the impact start: impact started at {slack_date(started)}; time to detect 22m 00s"
    ], notices
    [event] = [e for e in await bot.timeline(incident.id or 0) if e.kind == "impact"]
    assert event.text == "impact start set to 2026-11-20 08:38:00 UTC (time to detect 22m 00s)"


async def test_an_impact_start_refused_says_the_time_in_the_reader_s_time_zone(
    bot: BotHarness, clock: FakeClock
) -> None:
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    await bot.command("started 2026-11-20T09:30Z", channel=channel)
    assert f"{slack_date(T0 + timedelta(minutes=30))} is in the future." in bot.last_reply(), bot.last_reply()

    clock.advance(timedelta(minutes=40))
    await bot.command("resolve rolled back", channel=channel)
    clock.advance(timedelta(hours=1))
    await bot.command("started 2026-11-20T09:45Z", channel=channel)
    reply = bot.last_reply()
    assert f"INC-1 was resolved at {slack_date(T0 + timedelta(minutes=40))}, before that." in reply, reply
    assert (await bot.incident(incident.id or 0)).impact_started_at is None


async def test_the_timeline_in_slack_shows_each_time_in_the_reader_s_time_zone(
    bot: BotHarness, clock: FakeClock
) -> None:
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=3))
    await bot.command("started -25m", channel=channel, user="U0BOB")

    await bot.command("timeline", channel=channel)
    reply = bot.last_reply()
    assert "INC-1 timeline\n" in reply and "(UTC)" not in reply, reply
    assert f"\n{slack_date(T0, seconds=True)} 📌 *declared* <@U0ALICE>" in reply, reply
    started = slack_date(T0 - timedelta(minutes=22), seconds=True)
    changed = slack_date(T0 + timedelta(minutes=3), seconds=True)
    assert f"\n{changed} 📌 *impact* <@U0BOB> impact start set to {started} (time to detect 22m 00s)" in reply, reply


async def test_incident_stats_says_since_when_in_the_reader_s_time_zone(bot: BotHarness, clock: FakeClock) -> None:
    await bot.declare("P2 Slow search")
    clock.advance(timedelta(hours=1))
    await bot.command("stats 7")
    reply = bot.last_reply()
    assert f"(since {slack_date(T0 + timedelta(hours=1) - timedelta(days=7))})" in reply, reply
