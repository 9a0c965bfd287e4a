"""`/incident stats` and the dashboard's trends give an incident's times as its post-mortem does."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.postmortem import service as postmortem
from bot.postmortem import trends
from tests.harness import BotHarness
from tests.postmortem.seed import T0


async def test_stats_count_between_the_times_as_shown_like_the_postmortem(bot: BotHarness, clock: FakeClock) -> None:
    """Times carry microseconds: declared at 09:00:00.9 and acknowledged at 09:00:04.1 is 4s in the
    post-mortem (between the times it prints), so it is 4s in the stats too, not 3.2s shown as 3s."""
    clock.set(T0 + timedelta(microseconds=900_000))
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    clock.set(T0 + timedelta(seconds=4, microseconds=100_000))
    await bot.command("ack", channel=channel)
    clock.set(T0 + timedelta(minutes=2, seconds=30, microseconds=200_000))
    await bot.command("started 08:58", channel=channel)
    clock.set(T0 + timedelta(minutes=10, seconds=5, microseconds=50_000))
    await bot.command("resolve rolled back", channel=channel)

    async with bot.deps.db.session() as session:
        data = await postmortem.build(session, incident_id=incident.id or 0, now=clock.now())
        rows = await trends.incidents_between(session, since=T0 - timedelta(days=7), until=clock.now())
    assert data.acknowledged.after == timedelta(seconds=4)
    assert data.resolved.after == timedelta(minutes=10, seconds=5)
    assert data.time_to_detect == timedelta(minutes=2)

    await bot.command("stats", channel="C0GENERAL")
    reply = bot.last_reply()
    assert "Time to acknowledge: mean *4s*" in reply, reply
    assert "Time to resolve: mean *10m 05s*" in reply, reply
    assert "Time to detect: mean *2m 00s*" in reply, reply
    [week] = [w for w in trends.compute(rows, now=clock.now(), weeks=1, hidden=set()).weeks if w.count]
    assert week.tta_median == timedelta(seconds=4) and week.ttr_median == timedelta(minutes=10, seconds=5)
