"""`channels.archive_after`: a resolved incident's channel is archived that long after resolution,
with a last message pointing at the post-mortem; once, across restarts; never while open."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlalchemy.exc import OperationalError
from sqlmodel import col

from bot.archive import service as archive_service
from bot.archive.models import ChannelArchive
from bot.clock import FakeClock
from bot.incidents.models import Incident, Status
from tests.archive.support import CONFIG, archiver, resolved_incident, timers
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot, until
from tests.postmortem.seed import T0


async def test_the_channel_is_archived_after_the_delay_with_a_last_message_linking_the_postmortem(
    abot: BotHarness, clock: FakeClock
) -> None:
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    [timer] = await timers(abot)
    assert timer.due_at == (incident.resolved_at or T0) + timedelta(days=7) and timer.channel_id == channel

    clock.advance(timedelta(days=6, hours=23))
    assert await archiver(abot).run_due() == 0
    assert not abot.fake.channels[channel].archived

    clock.advance(timedelta(hours=2))
    assert await archiver(abot).run_due() == 1
    assert abot.fake.channels[channel].archived
    [call] = abot.fake.calls_to("conversations.archive")
    assert call.args["channel"] == channel and call.response["ok"]
    last = [m for m in abot.fake.messages(channel) if m.ephemeral_to is None][-1]
    [file] = [f for f in abot.fake.files.values() if f.completed]
    assert f"/files/UBOT/{file.id}/INC-1-postmortem.md" in last.text or file.id in last.text
    assert "being archived" in last.text and "INC-1" in last.text
    events = await abot.timeline(incident.id or 0)
    assert events[-1].text == "incident channel archived"

    clock.advance(timedelta(days=1))
    assert await archiver(abot).run_due() == 0
    assert len(abot.fake.calls_to("conversations.archive")) == 1
    [timer] = await timers(abot)
    assert timer.sent_at is not None


async def test_an_open_incident_is_never_archived(abot: BotHarness, clock: FakeClock) -> None:
    open_one = await abot.declare("P2 Still burning")
    incident = await resolved_incident(abot, clock)
    # Reopened (by a future command, or by hand in the database) after its timer was planned.
    async with abot.deps.db.session() as session:
        await session.exec(  # type: ignore[call-overload]
            update(Incident)
            .where(col(Incident.id) == incident.id)
            .values(status=Status.INVESTIGATING, resolved_at=None)
        )
        await session.commit()
    clock.advance(timedelta(days=30))
    assert await archiver(abot).run_due() == 0
    assert abot.fake.calls_to("conversations.archive") == []
    [timer] = await timers(abot)
    assert timer.cancelled_at is not None and timer.cancel_reason == "the incident is open again"
    assert not abot.fake.channels[open_one.channel_id or ""].archived


async def test_a_channel_archived_by_hand_meanwhile_counts_as_done(abot: BotHarness, clock: FakeClock) -> None:
    incident = await resolved_incident(abot, clock)
    abot.fake.channels[incident.channel_id or ""].archived = True
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 0
    [timer] = await timers(abot)
    assert timer.sent_at is not None  # nothing left to do: not retried forever


async def test_a_failed_archive_is_retried_without_a_second_last_message(abot: BotHarness, clock: FakeClock) -> None:
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    abot.fake.server_error("conversations.archive")
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 0
    [timer] = await timers(abot)
    assert timer.sent_at is None and timer.goodbye_posted and timer.due_at > clock.now()
    clock.advance(timedelta(hours=1))
    assert await archiver(abot).run_due() == 1
    goodbyes = [m for m in abot.fake.messages(channel) if "being archived" in m.text]
    assert len(goodbyes) == 1 and abot.fake.channels[channel].archived


async def _last_message_posted_then_crashed(abot: BotHarness, clock: FakeClock) -> str:
    """A resolved incident whose archive posted its last message, then died before recording it (the
    archive itself failed); returns the channel."""
    incident = await resolved_incident(abot, clock)
    abot.fake.server_error("conversations.archive")
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 0
    async with abot.deps.db.session() as session:  # what the crash left: the post done, its record not
        await session.exec(update(ChannelArchive).values(goodbye_posted=False))  # type: ignore[call-overload]
        await session.commit()
    return incident.channel_id or ""


async def test_a_last_message_posted_just_before_a_crash_is_not_posted_again(
    abot: BotHarness, clock: FakeClock
) -> None:
    """The bot died between posting the last message and recording it: the retry finds it in the channel."""
    channel = await _last_message_posted_then_crashed(abot, clock)
    clock.advance(timedelta(hours=1))
    assert await archiver(abot).run_due() == 1
    goodbyes = [m for m in abot.fake.messages(channel) if "being archived" in m.text]
    assert len(goodbyes) == 1 and abot.fake.channels[channel].archived
    [look] = abot.fake.calls_to("conversations.history")
    assert look.args["channel"] == channel


async def test_a_first_attempt_posts_without_reading_the_history(abot: BotHarness, clock: FakeClock) -> None:
    incident = await resolved_incident(abot, clock)
    before = len(abot.fake.calls_to("conversations.history"))
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 1
    assert len(abot.fake.calls_to("conversations.history")) == before
    [goodbye] = [m for m in abot.fake.messages(incident.channel_id or "") if "being archived" in m.text]
    assert goodbye.metadata == {"event_type": "incident_channel_goodbye", "event_payload": {"incident": "INC-1"}}


async def test_an_archive_that_fell_due_while_the_bot_was_down_happens_at_start(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as first:
        incident = await resolved_incident(first, clock)
    assert not fake_slack.channels[incident.channel_id or ""].archived

    later = FakeClock(T0 + timedelta(days=9))  # the bot was down when it fell due
    async with running_bot(fake=fake_slack, settings=settings, clock=later) as second:
        await second.settle()
        assert fake_slack.channels[incident.channel_id or ""].archived
        assert len(fake_slack.calls_to("conversations.archive")) == 1
        [timer] = await timers(second)
        assert timer.sent_at is not None


async def test_a_timer_lost_in_a_crash_is_planned_at_start_but_old_history_is_left_alone(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock(T0)
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as first:
        old = await resolved_incident(first, clock)
        clock.advance(timedelta(days=20))
        recent = await resolved_incident(first, clock)
        async with first.deps.db.session() as session:  # as if the process died before planning them
            from sqlalchemy import delete

            await session.exec(delete(ChannelArchive))  # type: ignore[call-overload]
            await session.commit()

    later = FakeClock(clock.now() + timedelta(days=7, hours=1))
    async with running_bot(fake=fake_slack, settings=settings, clock=later) as second:
        await second.settle()
        assert fake_slack.channels[recent.channel_id or ""].archived
        assert not fake_slack.channels[old.channel_id or ""].archived  # resolved 27 days ago: not swept away
        [timer] = await timers(second)
        assert timer.incident_id == recent.id and timer.sent_at is not None


async def test_a_channel_the_bot_was_removed_from_is_joined_again_and_archived(
    abot: BotHarness, clock: FakeClock
) -> None:
    """Someone removed the bot from the channel after the incident: Slack answers not_in_channel to the
    archive; the bot joins again (channels:join) instead of leaving the channel open for good."""
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    abot.fake.channels[channel].members.discard(abot.fake.bot_user_id)
    clock.advance(timedelta(days=8))
    assert await archiver(abot).run_due() == 1
    assert abot.fake.channels[channel].archived
    [timer] = await timers(abot)
    assert timer.sent_at is not None and timer.error is None
    assert [c.args["channel"] for c in abot.fake.calls_to("conversations.join")] == [channel]


async def test_a_retry_reads_the_history_of_a_channel_the_bot_was_removed_from(
    abot: BotHarness, clock: FakeClock
) -> None:
    channel = await _last_message_posted_then_crashed(abot, clock)
    abot.fake.channels[channel].members.discard(abot.fake.bot_user_id)
    clock.advance(timedelta(hours=1))
    assert await archiver(abot).run_due() == 1
    goodbyes = [m for m in abot.fake.messages(channel) if "being archived" in m.text]
    assert len(goodbyes) == 1 and abot.fake.channels[channel].archived


async def test_a_shutdown_lets_an_archive_in_flight_finish(abot: BotHarness, clock: FakeClock) -> None:
    """SIGTERM while the scheduler's run was archiving: the run was cancelled between Slack archiving
    the channel and the bot recording it, so the timer stayed pending and the timeline silent."""
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    clock.advance(timedelta(days=8))
    gate = abot.fake.hold("conversations.archive")
    archiver(abot).wake_at(clock.now())  # the scheduler runs it, as in production
    await until(lambda: abot.fake.held)
    stopping = asyncio.create_task(archiver(abot).stop())
    await asyncio.sleep(0)  # the stop has begun (its first step ran) before Slack answers
    gate.set()
    await asyncio.wait_for(stopping, 5)
    assert abot.fake.channels[channel].archived
    [timer] = await timers(abot)
    assert timer.sent_at is not None and timer.claim_token is None
    assert (await abot.timeline(incident.id or 0))[-1].text == "incident channel archived"


async def test_a_timer_whose_planning_failed_is_planned_by_the_next_sweep(
    abot: BotHarness, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resolve's planning runs in a task of its own, which nothing retries: a database blip there left
    the channel unarchived until a restart (only the start-up looked for timers that were never planned)."""
    real_plan = archive_service.plan
    blips: list[str] = []

    async def plan_after_a_blip(*args: Any, **kwargs: Any) -> None:
        if not blips:
            blips.append("database is locked")
            raise OperationalError("INSERT INTO channel_archives", {}, Exception(blips[0]))
        await real_plan(*args, **kwargs)

    monkeypatch.setattr(archive_service, "plan", plan_after_a_blip)
    incident = await resolved_incident(abot, clock)
    assert blips and await timers(abot) == []

    clock.advance(timedelta(days=7, minutes=1))
    assert await archiver(abot).sweep() == 1
    assert abot.fake.channels[incident.channel_id or ""].archived
    [timer] = await timers(abot)
    assert timer.sent_at is not None
