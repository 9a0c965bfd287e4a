"""The notice that a person archived an open incident's channel survives a crash after Slack's event was acked
and Slack failing for a while, goes out once however many senders try, and is not sent once the channel was
unarchived or the incident resolved (the timeline says so)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FakeClock
from bot.incidents import archived_notice
from bot.incidents import service as incidents
from bot.incidents.models import ArchivedNotice
from tests.archive.support import CONFIG
from tests.archive.test_archive_unarchived import by_person
from tests.conftest import make_settings
from tests.crash import stay_up
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot, until

NOTICE = "was archived"
Fault = Callable[[FakeSlack], None]
_TRANSIENT: dict[str, Fault] = {
    "ratelimited": lambda fake: fake.fail("chat.postMessage", "ratelimited", count=2),
    "service_unavailable": lambda fake: fake.fail("chat.postMessage", "service_unavailable", count=2),
    "HTTP 503": lambda fake: fake.server_error("chat.postMessage", status=503, count=2),
}


def notices(fake: FakeSlack, user: str = "U0ALICE") -> list[str]:
    return [m.text for m in fake.dms(user) if NOTICE in m.text]


async def notice_lines(bot: BotHarness) -> list[str]:
    return [e.text for e in await bot.timeline(1) if e.data.get("step") == "archived notice"]


async def archive(bot: BotHarness, clock: FakeClock, *, settle: bool = True, fault: Fault | None = None) -> str:
    """Declare INC-1 (U0ALICE in charge); U0BOB archives its channel (with Slack's `fault` from then on)."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id or ""
    if fault is not None:
        fault(bot.fake)
    bot.fake.channels[channel].archived = True
    clock.advance(timedelta(seconds=5))
    response = await bot.event(by_person(clock, channel, "channel_archive"), settle=settle)
    assert response.status_code == 200
    return channel


def a_bot(fake: FakeSlack, database_url: str, tmp_path: Path, clock: FakeClock) -> Any:
    settings = make_settings(fake=fake, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    return running_bot(fake=fake, settings=settings, clock=clock)


async def test_a_crash_after_the_ack_delays_the_notice_it_does_not_lose_it(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """The archive was recorded before the ack; the process died as it went to tell the commander. Nothing
    said to send it again: the commander never heard that the channel had gone silent."""
    clock = FakeClock()
    async with a_bot(fake_slack, database_url, tmp_path, clock) as bot:

        async def dies(**_: object) -> None:
            raise asyncio.CancelledError  # kill -9: nothing after this runs

        bot.deps.incident_chat.tell_channel_archived = dies  # type: ignore[method-assign]
        await archive(bot, clock)
    assert notices(fake_slack) == []

    clock.advance(timedelta(minutes=1))
    async with a_bot(fake_slack, database_url, tmp_path, clock) as bot:
        await stay_up(bot, clock, every=timedelta(seconds=30), times=8)  # the dead claim's lease runs out
        lines = await notice_lines(bot)
    [notice] = notices(fake_slack)
    assert "was archived by <@U0BOB> while INC-1 (Checkout down) is open" in notice
    assert lines == ["told <@U0ALICE> that the channel was archived"]


def notice_posts(fake: FakeSlack) -> int:
    return len([c for c in fake.calls_to("chat.postMessage") if NOTICE in str(c.args.get("text"))])


@pytest.mark.parametrize("fault", _TRANSIENT.values(), ids=_TRANSIENT.keys())
async def test_slack_failing_for_a_while_is_tried_again_and_tells_once(
    abot: BotHarness, clock: FakeClock, fault: Fault
) -> None:
    """One answer of Slack's (throttled, down) and the commander was never told: the timeline said it failed."""
    await archive(abot, clock, fault=fault)
    assert notices(abot.fake) == []
    await stay_up(abot, clock, every=timedelta(seconds=30), times=10)  # past the back-offs (30 s, then 1 min)
    assert len(notices(abot.fake)) == 1 and notice_posts(abot.fake) == 3
    assert await notice_lines(abot) == ["told <@U0ALICE> that the channel was archived"]


async def test_a_refusal_is_given_up_at_once(abot: BotHarness, clock: FakeClock) -> None:
    await archive(abot, clock, fault=lambda fake: fake.fail("chat.postMessage", "cannot_dm_bot"))
    await stay_up(abot, clock, every=timedelta(minutes=1), times=10)
    assert notices(abot.fake) == [] and notice_posts(abot.fake) == 1
    assert await notice_lines(abot) == [
        "telling <@U0ALICE> that the channel was archived failed: Slack answered cannot_dm_bot"
    ]


async def test_slack_failing_for_good_is_given_up_after_the_last_attempt(abot: BotHarness, clock: FakeClock) -> None:
    failing = archived_notice.ATTEMPTS + 10
    await archive(abot, clock, fault=lambda fake: fake.fail("chat.postMessage", "service_unavailable", count=failing))
    await stay_up(abot, clock, every=timedelta(minutes=1), times=40)
    assert notices(abot.fake) == [] and notice_posts(abot.fake) == archived_notice.ATTEMPTS
    assert await notice_lines(abot) == [
        "telling <@U0ALICE> that the channel was archived failed: Slack answered service_unavailable "
        f"(gave up after {archived_notice.ATTEMPTS} attempts)"
    ]
    async with abot.deps.db.session() as session:
        [row] = (await session.exec(select(ArchivedNotice))).all()
    assert row.attempts == archived_notice.ATTEMPTS and row.cancelled_at is not None and row.sent_at is None


async def test_two_senders_at_once_tell_once(abot: BotHarness, clock: FakeClock) -> None:
    """The ack's send holds the claim while Slack takes the DM: the sweep (here, or on another replica)
    leaves it alone, and no later sweep sends it again."""
    gate = abot.fake.hold("chat.postMessage", lambda args: NOTICE in str(args.get("text")))
    try:
        await archive(abot, clock, settle=False)
        await until(lambda: abot.fake.held)
        assert abot.deps.setup_sweep is not None
        others = [archived_notice.send_due(abot.deps) for _ in range(3)]
        assert await asyncio.gather(*others) == [0, 0, 0]
    finally:
        gate.set()
    await abot.settle()
    await stay_up(abot, clock, every=timedelta(minutes=1), times=5)  # past the lease
    assert len(notices(abot.fake)) == 1
    assert await notice_lines(abot) == ["told <@U0ALICE> that the channel was archived"]


async def test_a_notice_not_sent_before_the_channel_was_unarchived_or_the_incident_resolved_is_not_sent(
    abot: BotHarness, clock: FakeClock
) -> None:
    channel = await archive(abot, clock, fault=lambda fake: fake.fail("chat.postMessage", "service_unavailable"))
    assert notices(abot.fake) == []
    clock.advance(timedelta(seconds=10))
    abot.fake.channels[channel].archived = False
    await abot.event(by_person(clock, channel, "channel_unarchive"))
    await stay_up(abot, clock, every=timedelta(minutes=1), times=5)
    assert notices(abot.fake) == []
    assert await notice_lines(abot) == ["nobody was told the channel was archived: <@U0BOB> unarchived it first"]

    second = await abot.declare("P2 Search slow")
    other = second.channel_id or ""
    abot.fake.fail("chat.postMessage", "service_unavailable", count=1)
    abot.fake.channels[other].archived = True
    await abot.event(by_person(clock, other, "channel_archive"))
    async with abot.deps.db.session() as session:  # resolved (from the dashboard, say) before the retry
        found = await incidents.get(session, number=2)
        await incidents.resolve(session, incident=found, summary="fixed", actor="U0ALICE", now=clock.now())
    await stay_up(abot, clock, every=timedelta(minutes=1), times=5)
    assert notices(abot.fake) == []
    lines = [e.text for e in await abot.timeline(2) if e.data.get("step") == "archived notice"]
    assert lines == ["nobody was told the channel was archived: INC-2 was resolved first"]
