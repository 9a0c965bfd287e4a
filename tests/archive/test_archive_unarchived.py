"""A channel a person unarchived after the resolution (to go on with the post-mortem) stays unarchived: the bot
does not archive it again, whether its own archive's answer was lost and retried, or its timer falls due after a
person archived the channel early and then unarchived it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.timeline.models import Kind, TimelineEvent
from tests.archive.support import archiver, resolved_incident, timers
from tests.harness import BotHarness


def by_person(clock: FakeClock, channel: str, subtype: str, user: str = "U0BOB") -> dict[str, Any]:
    """Slack's message for a channel (un)archived by `user`, sent now."""
    ts = f"{clock.now().timestamp():.6f}"
    return {"type": "message", "subtype": subtype, "channel": channel, "user": user, "text": subtype, "ts": ts}


async def unarchived(bot: BotHarness, clock: FakeClock, channel: str, user: str = "U0BOB") -> None:
    bot.fake.channels[channel].archived = False
    response = await bot.event(by_person(clock, channel, "channel_unarchive", user))
    assert response.status_code == 200


async def test_a_channel_unarchived_after_the_bot_archived_it_is_not_archived_again_by_a_retry(
    abot: BotHarness, clock: FakeClock
) -> None:
    """Slack archived it but the answer was cut: the bot retried later and archived it again, though a
    person had unarchived it meanwhile to keep working."""
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    abot.fake.disconnect("conversations.archive", acted=True)
    clock.advance(timedelta(days=7, minutes=1))
    assert await archiver(abot).sweep() == 0
    assert abot.fake.channels[channel].archived  # Slack did it; the bot could not know

    clock.advance(timedelta(seconds=20))
    await unarchived(abot, clock, channel)
    for _ in range(4):  # past every back-off
        clock.advance(timedelta(hours=2))
        await archiver(abot).sweep()

    assert len(abot.fake.calls_to("conversations.archive")) == 1
    assert not abot.fake.channels[channel].archived
    [timer] = await timers(abot)
    assert timer.sent_at is None and timer.claim_token is None
    assert timer.cancel_reason == "U0BOB unarchived the channel after the resolution"
    assert [(e.actor, e.text) for e in await abot.timeline(incident.id or 0) if "unarchived" in e.text] == [
        ("U0BOB", "channel unarchived")
    ]


async def test_a_channel_archived_and_unarchived_by_a_person_after_the_resolution_is_left_unarchived(
    abot: BotHarness, clock: FakeClock
) -> None:
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    clock.advance(timedelta(days=1))
    abot.fake.channels[channel].archived = True
    await abot.event(by_person(clock, channel, "channel_archive"))
    clock.advance(timedelta(days=1))
    await unarchived(abot, clock, channel, user="U0CAROL")

    clock.advance(timedelta(days=6))
    assert await archiver(abot).sweep() == 0
    assert abot.fake.calls_to("conversations.archive") == []
    assert not [m for m in abot.fake.messages(channel) if "being archived" in m.text]
    [timer] = await timers(abot)
    assert timer.cancel_reason == "U0CAROL unarchived the channel after the resolution"


async def test_an_unarchive_while_the_incident_was_open_or_the_bot_s_own_does_not_keep_the_channel(
    abot: BotHarness, clock: FakeClock
) -> None:
    """Undoing an archive during the incident says nothing about after it; and the bot's own messages are
    never a person's word."""
    incident = await abot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    abot.fake.channels[channel].archived = True
    await abot.event(by_person(clock, channel, "channel_archive"))
    clock.advance(timedelta(minutes=1))
    await unarchived(abot, clock, channel)
    clock.advance(timedelta(minutes=30))
    await abot.command("resolve rolled back", channel=channel)
    clock.advance(timedelta(days=1))
    await unarchived(abot, clock, channel, user=abot.fake.bot_user_id)

    clock.advance(timedelta(days=7))
    assert await archiver(abot).sweep() == 1
    assert abot.fake.channels[channel].archived
    [timer] = await timers(abot)
    assert timer.sent_at is not None and timer.cancelled_at is None


async def test_a_setup_row_that_does_not_read_does_not_stop_the_archive(abot: BotHarness, clock: FakeClock) -> None:
    """The unarchive check read each setup row strictly: one odd row raised in every sweep, the timer stayed
    claimed, and the channel was never archived."""
    incident = await resolved_incident(abot, clock)
    async with abot.deps.db.session() as session:
        odd = {"step": ["not", "a", "step"]}
        session.add(
            TimelineEvent(incident_id=incident.id or 0, at=clock.now(), kind=Kind.SETUP, actor="U0BOB", data=odd)
        )
        await session.commit()

    clock.advance(timedelta(days=7, minutes=1))
    assert await archiver(abot).sweep() == 1
    assert abot.fake.channels[incident.channel_id or ""].archived
