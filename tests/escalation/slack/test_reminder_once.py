"""A status reminder Slack posted but whose answer never came back is found in the channel, not posted again."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.escalation.models import ReminderKind
from bot.escalation.reminders import rows as reminder_rows
from tests.escalation.slack.conftest import CONFIG, Starter, escalator, scheduler, tick
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness

LEAD_ONLY = {**CONFIG, "escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}
REMINDER = "has had no status update"


def reminders(fake: FakeSlack, channel: str) -> list[str]:
    return [m.text for m in fake.messages(channel) if REMINDER in m.text]


def reminder_post(args: dict[str, Any]) -> bool:
    return REMINDER in str(args.get("text", ""))


async def declared(bot: BotHarness, clock: FakeClock) -> str:
    """A P1 paged already (its page's posts are done): the next post is the first status reminder, at 15 minutes."""
    await bot.declare("P1 Checkout is down", user="U0BOB")
    await tick(bot, clock, timedelta(minutes=14))
    channel = (await bot.incident(1)).channel_id
    assert channel is not None and reminders(bot.fake, channel) == []
    return channel


async def sent(bot: BotHarness) -> list[tuple[int, bool]]:
    async with bot.deps.db.session() as session:
        rows = await reminder_rows.reminders(session, incident_id=1, kind=ReminderKind.STATUS_UPDATE)
    return [(r.seq, r.sent_at is not None) for r in rows]


async def test_a_reminder_whose_answer_was_cut_is_recorded_on_the_retry_not_posted_again(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot, clock)
    bot.fake.disconnect("chat.postMessage", acted=True)  # Slack posts it; the answer is cut on the way back
    await tick(bot, clock, timedelta(minutes=1))
    assert len(reminders(bot.fake, channel)) == 1
    assert await sent(bot) == [(0, False)]  # the bot could not know: it tries again
    await tick(bot, clock, timedelta(seconds=30))
    assert len(reminders(bot.fake, channel)) == 1
    (looked,) = bot.fake.calls_to("conversations.history")
    assert looked.args["include_all_metadata"] is True and looked.args["channel"] == channel
    assert await sent(bot) == [(0, True), (1, False)]
    reminded = [e for e in await bot.timeline(1) if e.text.startswith("Reminded the channel about the status")]
    assert len(reminded) == 1


async def test_a_retry_after_slack_answered_does_not_look_but_one_after_fatal_error_or_a_gateway_page_does(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot, clock)
    bot.fake.fail("chat.postMessage", "ratelimited")  # Slack's own answer: nothing was posted
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert bot.fake.calls_to("conversations.history") == []
    assert len(reminders(bot.fake, channel)) == 1
    assert await sent(bot) == [(0, True), (1, False)]

    bot.fake.fail("chat.postMessage", "fatal_error")  # Slack may have done part of it: looked for
    await tick(bot, clock, timedelta(minutes=15))
    await tick(bot, clock, timedelta(seconds=30))
    assert len(bot.fake.calls_to("conversations.history")) == 1
    assert len(reminders(bot.fake, channel)) == 2  # not found there: posted
    bot.fake.server_error("chat.postMessage", status=502)
    await tick(bot, clock, timedelta(minutes=15))
    await tick(bot, clock, timedelta(seconds=30))
    assert len(bot.fake.calls_to("conversations.history")) == 2
    assert len(reminders(bot.fake, channel)) == 3
    assert await sent(bot) == [(0, True), (1, True), (2, True), (3, False)]


async def test_a_sender_stalled_after_slack_posted_a_retried_reminder_is_not_repeated_by_the_one_that_takes_over(
    start: Starter, clock: FakeClock
) -> None:
    """Slack answered the first attempt with an error; the second's sender stalls after Slack posted it (as a
    kill -9 between the post and its record): its lease runs out, another replica takes the reminder over and
    finds the post, though the last answer it can read was Slack's error."""
    a = await start(LEAD_ONLY)
    channel = await declared(a, clock)
    a.fake.fail("chat.postMessage", "service_unavailable")
    await tick(a, clock, timedelta(minutes=1))
    assert reminders(a.fake, channel) == []
    b = await start(LEAD_ONLY)
    # b's start-up catch-up sweep runs in the background: it ends before the retry falls due, or it would race
    # a for the claim and, winning it, hold b's sweeps behind its held post until Slack's call timed out.
    await b.settle()
    posted = asyncio.Event()

    def second(args: dict[str, Any]) -> bool:
        if reminder_post(args):
            posted.set()
            return True
        return False

    gate = a.fake.hold_after("chat.postMessage", second)
    clock.advance(timedelta(seconds=30))
    stalled = asyncio.create_task(scheduler(a).run())
    await asyncio.wait_for(posted.wait(), 10)
    clock.advance(escalator(a).rt.lease + timedelta(seconds=1))
    await scheduler(b).run()
    (looked,) = a.fake.calls_to("conversations.history")
    assert looked.args["channel"] == channel
    gate.set()
    await stalled
    await b.settle()
    assert len(reminders(a.fake, channel)) == 1
    assert (await sent(b))[0] == (0, True)


async def test_a_reminder_dmed_for_an_incident_without_a_channel_is_looked_for_in_the_dm(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    bot.fake.fail("conversations.create", "restricted_action")
    await bot.declare("P1 Checkout is down", user="U0BOB")
    assert (await bot.incident(1)).channel_id is None
    await tick(bot, clock, timedelta(minutes=14))
    bot.fake.disconnect("chat.postMessage", acted=True)
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert len([m for m in bot.fake.dms("U0BOB") if REMINDER in m.text]) == 1
    (looked,) = bot.fake.calls_to("conversations.history")
    assert looked.args["channel"].startswith("D")
    assert await sent(bot) == [(0, True), (1, False)]
