"""A reminder to publish Slack posted but whose answer was lost is found in the channel, not posted again (on the
last attempt too: recorded, not given up); one Slack refused is posted again, or given up, without looking."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import FakeClock
from bot.statuspage import reminding, service
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness
from tests.statuspage.conftest import CONFIG, page_of

REMINDER = "the public has heard nothing"
# Reminded after 5 minutes: before the escalation's own status reminder (15), so the next chat.postMessage a
# test makes fail is the reminder to publish.
EARLY = {**CONFIG, "status_page": {**CONFIG["status_page"], "remind_every": "5m"}}


@pytest.fixture
def page_config() -> dict[str, Any]:
    return EARLY


def reminders(bot: BotHarness, channel: str) -> list[Any]:
    return [m for m in bot.fake.messages(channel) if REMINDER in m.text]


def looks(bot: BotHarness, channel: str) -> list[Any]:
    return [c for c in bot.fake.calls_to("conversations.history") if c.args.get("channel") == channel]


async def rows(bot: BotHarness) -> list[tuple[int, bool]]:
    async with bot.deps.db.session() as session:
        return [(r.seq, r.sent_at is not None) for r in await service.reminders(session, incident_id=1)]


async def due(bot: BotHarness, clock: FakeClock) -> str:
    """A P1 whose first reminder to publish is due; its channel."""
    incident = await bot.declare("P1 service:api Payments fail")
    await bot.settle()
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=6))
    return channel


async def retry(bot: BotHarness, clock: FakeClock) -> None:
    clock.advance(timedelta(minutes=1))
    await page_of(bot).sweep()


async def test_a_reminder_whose_answer_was_cut_after_slack_posted_it_is_recorded_not_posted_again(
    sbot: BotHarness, clock: FakeClock
) -> None:
    bot = sbot
    channel = await due(bot, clock)
    bot.fake.disconnect("chat.postMessage", acted=True)  # Slack posts it; the answer is cut on the way back
    await page_of(bot).sweep()
    [posted] = reminders(bot, channel)
    assert posted.metadata == {
        "event_type": "status_page_reminder",
        "event_payload": {"incident": 1, "reminder": 1},
    }
    assert await rows(bot) == [(0, False)]  # the bot could not know: it tries again
    await retry(bot, clock)
    assert len(reminders(bot, channel)) == 1
    (looked,) = looks(bot, channel)
    assert looked.args["include_all_metadata"] is True
    assert await rows(bot) == [(0, True), (1, False)]
    assert len([e for e in await bot.timeline(1) if "Reminded the channel to publish" in e.text]) == 1


async def test_a_reminder_whose_answer_was_lost_before_slack_posted_it_is_posted_on_the_retry(
    sbot: BotHarness, clock: FakeClock
) -> None:
    bot = sbot
    channel = await due(bot, clock)
    bot.fake.disconnect("chat.postMessage", count=2)  # dropped before Slack did anything (and the client's retry)
    await page_of(bot).sweep()
    assert reminders(bot, channel) == []
    assert await rows(bot) == [(0, False)]
    await retry(bot, clock)
    assert len(looks(bot, channel)) == 1  # the outcome was unknown: looked for first, not found
    assert len(reminders(bot, channel)) == 1
    assert await rows(bot) == [(0, True), (1, False)]


@pytest.mark.parametrize(
    ("fault", "looked"),
    [
        (lambda fake: fake.fail("chat.postMessage", "ratelimited"), False),
        (lambda fake: fake.fail("chat.postMessage", "not_in_channel"), False),
        (lambda fake: fake.fail("chat.postMessage", "fatal_error"), True),
        (lambda fake: fake.server_error("chat.postMessage", status=502), True),
    ],
    ids=["ratelimited", "not_in_channel", "fatal_error", "gateway_502"],
)
async def test_a_retry_after_slacks_own_refusal_does_not_look_but_one_after_an_unknown_outcome_does(
    sbot: BotHarness, clock: FakeClock, fault: Callable[[FakeSlack], None], looked: bool
) -> None:
    bot = sbot
    channel = await due(bot, clock)
    fault(bot.fake)
    await page_of(bot).sweep()
    assert reminders(bot, channel) == [] and await rows(bot) == [(0, False)]
    await retry(bot, clock)
    assert len(looks(bot, channel)) == (1 if looked else 0)
    assert len(reminders(bot, channel)) == 1
    assert await rows(bot) == [(0, True), (1, False)]


async def test_a_sender_stalled_after_slack_posted_is_not_repeated_by_the_one_that_takes_over(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """As a crash between the post and its record: the lease runs out, and the next sender finds the post."""
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    await bot.settle()
    channel = incident.channel_id or ""
    async with bot.deps.db.session() as session:
        [row] = await service.reminders(session, incident_id=1)
    posted = asyncio.Event()

    def reminder(args: dict[str, Any]) -> bool:
        if REMINDER in str(args.get("text", "")):
            posted.set()
            return True
        return False

    # The page's own sweeps (its 30-second job, a wake-up) fire on the wall clock: one firing once the reminder
    # is due would claim it before either sender here. The page's timers are stopped, as at a shutdown; the
    # senders below are called directly.
    await page_of(bot).stop()
    clock.advance(timedelta(minutes=6))  # the first reminder is due
    gate = bot.fake.hold_after("chat.postMessage", reminder)
    stalled = asyncio.create_task(reminding.send_reminder(bot.deps, reminder_id=row.id or 0))
    await asyncio.wait_for(posted.wait(), 10)
    clock.advance(timedelta(minutes=3))  # past the lease
    assert await reminding.send_reminder(bot.deps, reminder_id=row.id or 0) is True
    assert len(looks(bot, channel)) == 1
    gate.set()
    assert await stalled is False  # no longer its claim: recorded once, by the one that took over
    assert len(reminders(bot, channel)) == 1
    assert await rows(bot) == [(0, True), (1, False)]
    assert len([e for e in await bot.timeline(1) if "Reminded the channel to publish" in e.text]) == 1


async def test_a_stopped_page_s_timers_send_nothing(sbot: BotHarness, clock: FakeClock) -> None:
    """What the takeover test above relies on: once the page is stopped, a wake-up (asked before the stop or
    after it) runs no sweep, and a reminder falling due is not sent."""
    bot = sbot
    channel = await due(bot, clock)
    page_of(bot).wake_at(clock.now())  # the scheduler would fire it in 200 ms, as in production
    await page_of(bot).stop()
    page_of(bot).wake_at(clock.now())
    await asyncio.sleep(0.6)
    assert reminders(bot, channel) == []
    async with bot.deps.db.session() as session:
        [row] = await service.reminders(session, incident_id=1)
    assert row.attempts == 0 and row.sent_at is None


async def test_a_reminder_moved_by_a_publish_is_posted_on_time_without_looking_for_an_earlier_one(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """A publish moves the pending reminder: its next claim is a first attempt, nothing unknown to look for."""
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=4))
    await bot.command("publish critical We are investigating.", channel=channel)
    await bot.settle()
    clock.advance(timedelta(minutes=2))
    await page_of(bot).sweep()  # due, but published a minute ago: moved to 5 minutes after the publish
    assert reminders(bot, channel) == [] and await rows(bot) == [(0, False)]
    clock.advance(timedelta(minutes=4))
    await page_of(bot).sweep()
    assert len(reminders(bot, channel)) == 1 and await rows(bot) == [(0, True), (1, False)]
    assert looks(bot, channel) == []


async def to_the_last_attempt(bot: BotHarness, clock: FakeClock, last: Callable[[FakeSlack], None]) -> str:
    """Slack refuses the first two attempts itself (nothing to look for); `last` befalls the third, the last."""
    channel = await due(bot, clock)
    bot.fake.fail("chat.postMessage", "service_unavailable")
    await page_of(bot).sweep()
    bot.fake.fail("chat.postMessage", "service_unavailable")
    await retry(bot, clock)
    assert looks(bot, channel) == [] and await rows(bot) == [(0, False)]
    last(bot.fake)
    await retry(bot, clock)
    return channel


async def test_a_last_attempt_slack_posted_but_whose_answer_was_lost_is_recorded_not_given_up(
    sbot: BotHarness, clock: FakeClock
) -> None:
    bot = sbot
    channel = await to_the_last_attempt(bot, clock, lambda fake: fake.disconnect("chat.postMessage", acted=True))
    assert len(reminders(bot, channel)) == 1
    (looked,) = looks(bot, channel)
    assert looked.args["include_all_metadata"] is True
    async with bot.deps.db.session() as session:
        first, _ = await service.reminders(session, incident_id=1)
    assert first.sent_at is not None and first.cancelled_at is None and first.attempts == 3
    assert len([e for e in await bot.timeline(1) if "Reminded the channel to publish" in e.text]) == 1


@pytest.mark.parametrize(
    ("fault", "looked", "code"),
    [
        (lambda fake: fake.disconnect("chat.postMessage", count=2), 1, "unreachable"),
        (lambda fake: fake.fail("chat.postMessage", "service_unavailable"), 0, "service_unavailable"),
    ],
    ids=["not_posted", "slack_refused"],
)
async def test_a_last_attempt_slack_did_not_post_is_given_up(
    sbot: BotHarness, clock: FakeClock, fault: Callable[[FakeSlack], None], looked: int, code: str
) -> None:
    bot = sbot
    channel = await to_the_last_attempt(bot, clock, fault)
    assert reminders(bot, channel) == []
    assert len(looks(bot, channel)) == looked
    async with bot.deps.db.session() as session:
        first, _ = await service.reminders(session, incident_id=1)
    assert first.sent_at is None and first.cancel_reason == f"gave up after 3 attempts: {code}"
    assert not [e for e in await bot.timeline(1) if "Reminded the channel to publish" in e.text]


def break_once(bot: BotHarness, table: str) -> list[bool]:
    """The next write of `sent_at` to `table` raises an error of our own (once); [True] while armed."""
    armed = [True]
    engine = bot.deps.db.engine.sync_engine

    def execute(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        flat = "".join(statement.split())
        if armed[0] and flat.startswith(f"UPDATE{table}SET") and "sent_at=" in flat.split("WHERE")[0]:
            armed[0] = False
            raise RuntimeError("a bug while recording the reminder")

    event.listen(engine, "before_cursor_execute", execute)
    return armed


async def test_a_last_attempt_that_broke_on_our_own_error_after_slack_posted_is_recorded_not_posted_again(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """The third (last) attempt posts, then recording it breaks: the reminder is looked for and recorded as sent,
    once, within that sweep, which goes on with the rest of its work."""
    bot = sbot
    armed: list[list[bool]] = []
    channel = await to_the_last_attempt(bot, clock, lambda _: armed.append(break_once(bot, "status_page_reminders")))
    assert armed == [[False]]  # the third attempt posted the reminder, then broke
    clock.advance(timedelta(minutes=3))
    await page_of(bot).sweep()
    assert len(reminders(bot, channel)) == 1
    async with bot.deps.db.session() as session:
        first, _ = await service.reminders(session, incident_id=1)
    assert first.sent_at is not None and first.cancelled_at is None and first.attempts == 3
    assert len([e for e in await bot.timeline(1) if "Reminded the channel to publish" in e.text]) == 1


async def test_a_reminder_that_keeps_breaking_on_our_own_error_is_given_up_after_the_last_attempt(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """A rendering bug on every attempt: retried a minute apart, then given up for the next one, and never out
    of the sweep (which goes on to the page's other work)."""
    bot = sbot

    async def broken(**_: Any) -> bool:
        raise RuntimeError("renderer bug")

    page_of(bot).chat.post_reminder = broken  # type: ignore[method-assign]
    channel = await due(bot, clock)
    await page_of(bot).sweep()
    await retry(bot, clock)
    await retry(bot, clock)
    assert reminders(bot, channel) == [] and len(looks(bot, channel)) == 3
    async with bot.deps.db.session() as session:
        first, nxt = await service.reminders(session, incident_id=1)
    assert first.attempts == 3 and first.sent_at is None
    assert first.cancel_reason == "gave up after 3 attempts: RuntimeError: renderer bug"
    assert nxt.sent_at is None and nxt.cancelled_at is None
