"""The last attempt allowed at a page DM or a status reminder whose answer was lost looks once before giving up:
Slack may have posted it, and then the person or channel has it and the timeline says so. One Slack did not post
(the answer lost before it acted) is given up as before; after an answer of Slack's own nothing is looked for."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from tests.escalation.slack.conftest import CONFIG, Starter, escalator, page_dms, page_lines, tick
from tests.escalation.slack.test_reminder_once import declared, reminders, sent
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness

LEAD_ONLY = {**CONFIG, "escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}

# What befalls the last attempt's chat.postMessage (the page DM, or the reminder).


def posted_answer_lost(fake: FakeSlack) -> None:
    fake.disconnect("chat.postMessage", acted=True)


def not_posted_answer_lost(fake: FakeSlack) -> None:
    fake.disconnect("chat.postMessage", count=2)  # dropped before Slack did anything (and the client's retry)


def slack_refused(fake: FakeSlack) -> None:
    fake.fail("chat.postMessage", "service_unavailable")


async def to_the_last_attempt(
    bot: BotHarness, clock: FakeClock, first: timedelta, last: Callable[[FakeSlack], None]
) -> None:
    """Slack answers the first two attempts with an error of its own (nothing to look for); `last` befalls the third."""
    bot.fake.fail("chat.postMessage", "service_unavailable")
    await tick(bot, clock, first)
    bot.fake.fail("chat.postMessage", "service_unavailable")
    await tick(bot, clock, timedelta(seconds=30))
    assert bot.fake.calls_to("conversations.history") == []
    last(bot.fake)
    await tick(bot, clock, timedelta(seconds=60))


async def test_a_last_page_dm_slack_posted_but_whose_answer_was_lost_is_recorded_as_sent(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    await bot.declare("P1 Checkout is down", user="U0BOB")
    channel = (await bot.incident(1)).channel_id
    assert channel is not None
    await to_the_last_attempt(bot, clock, timedelta(minutes=1), posted_answer_lost)
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    (looked,) = bot.fake.calls_to("conversations.history")
    assert looked.args["include_all_metadata"] is True and looked.args["channel"].startswith("D")
    (row,) = await escalator(bot).pages(1)
    assert row.attempts == 3 and row.sent_at is not None and row.sent_to == ["U0LEAD"] and row.failed == {}
    assert page_lines(bot.fake, channel)[-1] == "📟 Paged level 1 (Team lead) (attempt 3): <@U0LEAD>"
    paged = [e for e in await bot.timeline(1) if e.kind == "page"]
    assert [e.text for e in paged] == ["Paged level 1 (Team lead)"]
    assert paged[0].data["sent_to"] == ["U0LEAD"] and not paged[0].data.get("failed")


@pytest.mark.parametrize(
    ("last", "looks", "code"),
    [(not_posted_answer_lost, 1, "unreachable"), (slack_refused, 0, "service_unavailable")],
    ids=["not_posted", "slack_refused"],
)
async def test_a_last_page_dm_slack_did_not_post_is_given_up(
    start: Starter, clock: FakeClock, last: Callable[[FakeSlack], None], looks: int, code: str
) -> None:
    bot = await start(LEAD_ONLY)
    await bot.declare("P1 Checkout is down", user="U0BOB")
    await to_the_last_attempt(bot, clock, timedelta(minutes=1), last)
    assert page_dms(bot.fake, "U0LEAD") == []
    assert len(bot.fake.calls_to("conversations.history")) == looks
    (row,) = await escalator(bot).pages(1)
    assert row.attempts == 3 and row.sent_to == [] and row.failed == {"U0LEAD": f"gave up after 3 attempts: {code}"}
    paged = [e.text for e in await bot.timeline(1) if e.kind == "page"]
    assert paged == ["Page for level 1 (Team lead) reached nobody"]


async def test_a_last_status_reminder_slack_posted_but_whose_answer_was_lost_is_recorded_as_sent(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot, clock)
    await to_the_last_attempt(bot, clock, timedelta(minutes=1), posted_answer_lost)
    assert len(reminders(bot.fake, channel)) == 1
    (looked,) = bot.fake.calls_to("conversations.history")
    assert looked.args["include_all_metadata"] is True and looked.args["channel"] == channel
    assert await sent(bot) == [(0, True), (1, False)]
    said = [e.text for e in await bot.timeline(1) if e.kind == "reminder"]
    assert said == ["Reminded the channel about the status update"]


@pytest.mark.parametrize(
    ("last", "looks", "code"),
    [(not_posted_answer_lost, 1, "unreachable"), (slack_refused, 0, "service_unavailable")],
    ids=["not_posted", "slack_refused"],
)
async def test_a_last_status_reminder_slack_did_not_post_is_given_up(
    start: Starter, clock: FakeClock, last: Callable[[FakeSlack], None], looks: int, code: str
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot, clock)
    await to_the_last_attempt(bot, clock, timedelta(minutes=1), last)
    assert reminders(bot.fake, channel) == []
    assert len(bot.fake.calls_to("conversations.history")) == looks
    assert await sent(bot) == [(0, True), (1, False)]  # given up (recorded, sent to nobody); the next is planned
    said = [e.text for e in await bot.timeline(1) if e.kind == "reminder"]
    assert said == [f"Could not remind the channel about the status update (reminder could not be posted: {code})"]
