"""The Acknowledge button of a private incident's page: the person paged, before and after the channel."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from tests.escalation.slack.conftest import CONFIG, Starter, button_values, page_dms
from tests.harness import until

LEAD_FIRST = {**CONFIG, "escalation": {"levels": [{"name": "Team lead", "after": "0m", "notify": ["U0LEAD"]}]}}


async def test_someone_removed_from_the_private_channel_cannot_acknowledge_through_the_old_dm(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start({**LEAD_FIRST, "escalation": {**LEAD_FIRST["escalation"], "stop_on": "ack"}})
    incident = await bot.declare("private P1 Leaked credentials")
    channel = incident.channel_id or ""
    assert "U0LEAD" in bot.fake.channels[channel].members  # paged, so invited
    # Need to know: the commander takes the lead out of the channel.
    bot.fake.channels[channel].members.discard("U0LEAD")
    clock.advance(timedelta(minutes=2))  # past the one-minute membership cache

    (dm,) = page_dms(bot.fake, "U0LEAD")
    await bot.click(*button_values(dm)[0], user="U0LEAD", channel=dm.channel, message_ts=dm.ts)
    assert "There is no incident INC-1 that you can see" in bot.last_reply()
    assert (await bot.incident(1)).acknowledged_by is None  # and the escalation goes on


async def test_the_person_paged_acknowledges_before_the_private_channel_exists(start: Starter) -> None:
    bot = await start(LEAD_FIRST)
    gate = bot.fake.hold("conversations.create")
    try:
        await bot.command("declare private P1 Leaked credentials", settle=False)
        await until(lambda: len(page_dms(bot.fake, "U0LEAD")) == 1)
        assert (await bot.incident(1)).channel_id is None  # nobody is a member of anything yet
        (dm,) = page_dms(bot.fake, "U0LEAD")
        await bot.click(*button_values(dm)[0], user="U0LEAD", channel=dm.channel, message_ts=dm.ts, settle=False)
        await until(lambda: "You acknowledged INC-1" in str(bot.fake.responses[-1:]))
    finally:
        gate.set()
    await bot.settle()
    assert (await bot.incident(1)).acknowledged_by == "U0LEAD"
