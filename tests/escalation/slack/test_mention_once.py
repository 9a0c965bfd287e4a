"""A page's mention in the incident channel whose answer was lost, or whose record broke on an error of our own
after Slack took it, is looked for in the channel before it is posted again or given up, as the page DM is:
the channel has it once, and the timeline does not say it failed."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import FakeClock
from bot.db import Database
from tests.escalation.slack.conftest import CONFIG, Starter, escalator, page_dms, page_lines, tick
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness

LEAD_ONLY = {**CONFIG, "escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}
NEW_TARGETS = "INSERT INTO escalation_page_targets"
MARK_TARGET = "UPDATE escalation_page_targets SET state="  # a DM's record names the claim; the mention's does not


def mention_posted_answer_lost(fake: FakeSlack, *, dm: str | None = None) -> None:
    """The page's next DM passes (or Slack answers it `dm`); the mention after it is posted, its answer cut."""
    if dm is None:
        fake.server_error("chat.postMessage", count=0, after=1)
    else:
        fake.fail("chat.postMessage", dm)
    fake.disconnect("chat.postMessage", acted=True)


TWO = {**CONFIG, "escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD", "U0GONE"]}]}}
GONE = "⚠️ Could not DM `U0GONE`: user_not_found"


async def declared(bot: BotHarness) -> str:
    await bot.declare("P1 Checkout is down", user="U0BOB")
    channel = (await bot.incident(1)).channel_id
    assert channel is not None
    return channel


async def page_errors(bot: BotHarness) -> list[Any]:
    (row,) = await escalator(bot).pages(1)
    paged = [e for e in await bot.timeline(1) if e.kind == "page"]
    return [row.sent_to, [e.data.get("errors") or None for e in paged]]


async def test_a_mention_slack_posted_whose_answer_was_lost_is_not_posted_again_by_the_retry(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(TWO)  # U0GONE is no Slack user: the first mention says so, and only that one
    channel = await declared(bot)
    mention_posted_answer_lost(bot.fake, dm="service_unavailable")  # the lead's DM is retried; the mention is out
    await tick(bot, clock, timedelta(minutes=1))
    (first,) = page_lines(bot.fake, channel)
    assert page_dms(bot.fake, "U0LEAD") == [] and GONE in first
    await tick(bot, clock, timedelta(seconds=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    assert page_lines(bot.fake, channel) == [first, "📟 Paged level 1 (Team lead) (attempt 2): <@U0LEAD>"]
    (looked,) = bot.fake.calls_to("conversations.history")
    assert looked.args["include_all_metadata"] is True and looked.args["channel"] == channel
    assert await page_errors(bot) == [["U0LEAD"], [None]]


async def test_a_mention_whose_answer_was_lost_is_looked_for_by_the_retry_though_every_dm_got_through(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot)
    mention_posted_answer_lost(bot.fake)  # the DM reached the lead; Slack may have the mention: the page goes out again
    await tick(bot, clock, timedelta(minutes=1))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_lines(bot.fake, channel)) == 1
    assert bot.fake.calls_to("conversations.history") == []
    await tick(bot, clock, timedelta(seconds=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_lines(bot.fake, channel)) == 1
    assert len(bot.fake.calls_to("conversations.history")) == 1
    assert await page_errors(bot) == [["U0LEAD"], [None]]
    await escalator(bot).channel_ready(1)  # a catch-up finds nothing left to mention
    assert len(page_lines(bot.fake, channel)) == 1


async def test_a_last_mention_slack_posted_whose_answer_was_lost_is_recorded_as_posted(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot)
    bot.fake.fail("chat.postMessage", "service_unavailable", count=4)  # two attempts: neither DM nor mention posted
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert page_dms(bot.fake, "U0LEAD") == [] and page_lines(bot.fake, channel) == []
    mention_posted_answer_lost(bot.fake)  # the last attempt: the DM passes, the mention's answer is cut
    await tick(bot, clock, timedelta(seconds=60))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_lines(bot.fake, channel)) == 1
    assert len(bot.fake.calls_to("conversations.history")) == 1
    assert await page_errors(bot) == [["U0LEAD"], [None]]
    await escalator(bot).channel_ready(1)  # a catch-up finds nothing left to mention
    assert len(page_lines(bot.fake, channel)) == 1


async def test_a_mention_slack_refused_is_not_looked_for(start: Starter, clock: FakeClock) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot)
    bot.fake.server_error("chat.postMessage", count=0, after=1)
    bot.fake.fail("chat.postMessage", "channel_not_found")
    await tick(bot, clock, timedelta(minutes=1))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and page_lines(bot.fake, channel) == []
    assert bot.fake.calls_to("conversations.history") == []
    assert await page_errors(bot) == [["U0LEAD"], [["channel mention failed: channel_not_found"]]]


class BrokenMentionRecord:
    """The next record of a page's mention (its row added, or marked posted) raises an error of our own (once):
    the mention went out, its record did not."""

    def __init__(self, db: Database) -> None:
        self.armed = False
        self._engine = db.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._execute)

    def _execute(self, conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        said, values = " ".join(statement.split()), str(parameters)
        added = said.startswith(NEW_TARGETS) and "'channel'" in values
        marked = said.startswith(MARK_TARGET) and "claim_token" not in said and "'sent'" in values
        if self.armed and (added or marked):
            self.armed = False
            raise RuntimeError("a bug while recording the mention")

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._execute)


@pytest.fixture
def broken_mention() -> Iterator[Callable[[BotHarness], BrokenMentionRecord]]:
    made: list[BrokenMentionRecord] = []

    def make(bot: BotHarness) -> BrokenMentionRecord:
        made.append(BrokenMentionRecord(bot.deps.db))
        return made[-1]

    yield make
    for broken in made:
        broken.close()


async def test_a_mention_whose_record_broke_after_slack_took_it_is_not_posted_again_by_the_retry(
    start: Starter, clock: FakeClock, broken_mention: Callable[[BotHarness], BrokenMentionRecord]
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot)
    broken = broken_mention(bot)
    broken.armed = True
    await tick(bot, clock, timedelta(minutes=1))
    assert not broken.armed  # the first attempt DMed the lead, mentioned the page, then broke
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_lines(bot.fake, channel)) == 1
    await tick(bot, clock, timedelta(seconds=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    assert len(page_lines(bot.fake, channel)) == 1
    assert len(bot.fake.calls_to("conversations.history")) == 1
    assert await page_errors(bot) == [["U0LEAD"], [None]]


async def test_a_mention_whose_record_broke_on_the_last_attempt_is_looked_for_before_giving_up(
    start: Starter, clock: FakeClock, broken_mention: Callable[[BotHarness], BrokenMentionRecord]
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot)
    for _ in range(2):  # Slack's own answer to the DM and the mention: neither posted
        bot.fake.fail("chat.postMessage", "service_unavailable", count=2)
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert page_dms(bot.fake, "U0LEAD") == [] and page_lines(bot.fake, channel) == []
    history = len(bot.fake.calls_to("conversations.history"))
    broken = broken_mention(bot)
    broken.armed = True
    await tick(bot, clock, timedelta(seconds=60))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_lines(bot.fake, channel)) == 1
    assert len(bot.fake.calls_to("conversations.history")) > history
    broke = "gave up after 3 attempts: RuntimeError: a bug while recording the mention"
    assert await page_errors(bot) == [["U0LEAD"], [[broke]]]  # not that the mention failed
    await escalator(bot).channel_ready(1)  # a catch-up finds nothing left to mention
    assert len(page_lines(bot.fake, channel)) == 1


async def test_a_mention_slack_failed_for_now_is_tried_again_though_every_dm_got_through(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    channel = await declared(bot)
    bot.fake.server_error("chat.postMessage", count=0, after=1)  # the DM reaches the lead
    bot.fake.fail("chat.postMessage", "ratelimited")  # Slack answered: the mention was not posted
    await tick(bot, clock, timedelta(minutes=1))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and page_lines(bot.fake, channel) == []
    await tick(bot, clock, timedelta(seconds=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1  # not DMed again
    (line,) = page_lines(bot.fake, channel)
    assert "<@U0LEAD>" in line
    assert bot.fake.calls_to("conversations.history") == []  # Slack had answered: nothing to look for
    assert await page_errors(bot) == [["U0LEAD"], [None]]
