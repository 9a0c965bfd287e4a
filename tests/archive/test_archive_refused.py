"""An archive Slack will not do is said where people see it: the timeline, and the channel (or the
commander by DM when the bot cannot post there), never only in the log; and a channel that was not
archived is never recorded as archived."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.timeline.models import Kind
from tests.archive.support import archiver, resolved_incident, timers
from tests.harness import BotHarness


async def test_a_workspace_that_refuses_the_archive_is_told_in_the_channel_and_on_the_timeline(
    abot: BotHarness, clock: FakeClock
) -> None:
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    abot.fake.fail("conversations.archive", "restricted_action")  # only admins may archive channels here
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 0
    assert not abot.fake.channels[channel].archived
    goodbye, notice = [m.text for m in abot.fake.messages(channel) if m.ephemeral_to is None][-2:]
    assert "being archived" in goodbye
    assert "INC-1" in notice and "was not archived" in notice
    assert "a workspace setting does not let the bot archive channels" in notice and "by hand" in notice
    last = (await abot.timeline(incident.id or 0))[-1]
    assert last.kind == Kind.UNFINISHED_WORK and last.text.startswith("The channel was not archived")
    assert "restricted_action" in str(last.data)
    [timer] = await timers(abot)
    assert timer.sent_at is None and timer.cancelled_at is not None and "restricted_action" in (timer.error or "")

    clock.advance(timedelta(days=2))  # given up: neither tried nor said again
    assert await archiver(abot).run_due() == 0
    assert len(abot.fake.calls_to("conversations.archive")) == 1
    assert sum("was not archived" in m.text for m in abot.fake.messages(channel)) == 1


async def test_a_public_channel_the_bot_cannot_join_again_is_told_why_in_the_channel(
    abot: BotHarness, clock: FakeClock
) -> None:
    """Removed from the public channel, the bot may not join it again (the app lacks channels:join); it can
    still post there (chat:write.public)."""
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    abot.fake.channels[channel].members.discard(abot.fake.bot_user_id)
    abot.fake.fail("conversations.join", "missing_scope")
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 0
    assert not abot.fake.channels[channel].archived
    notice = abot.fake.messages(channel)[-1].text
    assert "was not archived" in notice and "lacks a permission" in notice and "by hand" in notice
    assert (await abot.timeline(incident.id or 0))[-1].kind == Kind.UNFINISHED_WORK


async def test_a_private_channel_the_bot_was_removed_from_is_not_recorded_as_archived(
    abot: BotHarness, clock: FakeClock
) -> None:
    """Slack answers channel_not_found for a private channel the bot is not in, and the bot cannot join it
    again: the channel is still there, unarchived, so the timer is given up, not done, and a person told."""
    incident = await resolved_incident(abot, clock, "private P1 Leaked credentials")
    channel = incident.channel_id or ""
    assert incident.private and abot.fake.channels[channel].is_private
    abot.fake.channels[channel].members.discard(abot.fake.bot_user_id)
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 0
    assert not abot.fake.channels[channel].archived
    [timer] = await timers(abot)
    assert timer.sent_at is None, "recorded as archived, but the channel is still there"
    assert timer.cancelled_at is not None
    events = await abot.timeline(incident.id or 0)
    assert all(e.text != "incident channel archived" for e in events)
    assert events[-1].kind == Kind.UNFINISHED_WORK and "cannot see this private channel" in events[-1].text
    [dm] = [m.text for m in abot.fake.dms("U0ALICE") if "was not archived" in m.text]
    assert "cannot see this private channel" in dm and "archive it" in dm


async def test_the_dm_about_a_private_channel_names_neither_its_title_nor_its_channel(
    abot: BotHarness, clock: FakeClock
) -> None:
    """The DM sits outside the private channel, whose name is made from the title: it names the incident
    by its number only, as the page DMs and the announcement do."""
    incident = await resolved_incident(abot, clock, "private P1 Leaked credentials")
    abot.fake.channels[incident.channel_id or ""].members.discard(abot.fake.bot_user_id)
    clock.advance(timedelta(days=8))
    await archiver(abot).run_due()
    [dm] = [m.text for m in abot.fake.dms("U0ALICE") if "was not archived" in m.text]
    assert dm.startswith(":warning: The channel of INC-1 was not archived")
    assert "leaked" not in dm.lower() and (incident.channel_name or "?") not in dm
