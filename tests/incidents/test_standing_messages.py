"""A person deletes the pinned summary or the announcement: the summary comes back (once, pinned), the
announcement stays gone, and neither turns every later update into a reported failure."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import replace

import pytest
from slack_sdk.web.async_client import AsyncWebClient
from sqlalchemy import update
from sqlmodel import col

from bot.config.base import Severity
from bot.incidents import flows, standing
from bot.incidents.models import Incident
from bot.slack.adapters.incidents import POST_EVENTS
from bot.tasks import KeyedLocks
from tests.harness import BotHarness, until


def deleter(bot: BotHarness) -> AsyncWebClient:
    # The fake lets only the author delete; in Slack a workspace admin deletes the bot's message.
    return AsyncWebClient(token=bot.fake.bot_token, base_url=bot.fake.url)


async def test_a_deleted_summary_is_posted_and_pinned_again_by_the_next_update(bot: BotHarness) -> None:
    await bot.declare("P2 Search is slow")
    incident = await bot.incident(1)
    channel, first = incident.channel_id or "", incident.summary_ts or ""
    await deleter(bot).chat_delete(channel=channel, ts=first)

    await bot.command("update identified bad index on orders", channel=channel)
    await bot.settle()

    incident = await bot.incident(1)
    assert incident.summary_ts not in (None, first)
    assert bot.fake.channels[channel].pins == [incident.summary_ts]
    [summary] = [m for m in bot.fake.messages(channel) if m.ts == incident.summary_ts]
    assert "identified" in (summary.text or "") + str(summary.blocks)
    assert not [r for r in bot.replies() if "failed" in r], bot.replies()
    assert any("summary was deleted in Slack; posted it again" in e.text for e in await bot.timeline(1))

    # The next update edits the new summary in place: nothing more is posted.
    posts = len(bot.fake.calls_to("chat.postMessage"))
    await bot.command("update monitoring index rebuilt", channel=channel)
    await bot.settle()
    assert (await bot.incident(1)).summary_ts == incident.summary_ts
    marker = POST_EVENTS["summary"]
    posted = [c for c in bot.fake.calls_to("chat.postMessage")[posts:] if marker in str(c.args.get("metadata"))]
    assert posted == []


async def test_two_updates_that_find_it_deleted_leave_one_summary(bot: BotHarness) -> None:
    """On two replicas (their own per-process locks), both find it deleted and post it again: one is kept."""
    await bot.declare("P2 Search is slow")
    stale = await bot.incident(1)
    channel = stale.channel_id or ""
    await deleter(bot).chat_delete(channel=channel, ts=stale.summary_ts or "")
    other = replace(bot.deps, standing_locks=KeyedLocks())

    results = await asyncio.gather(standing.refresh(bot.deps, incident_id=1), standing.refresh(other, incident_id=1))

    assert results == [[], []]
    incident = await bot.incident(1)
    kept = [m.ts for m in bot.fake.messages(channel) if m.ts == incident.summary_ts]
    assert len(kept) == 1
    assert bot.fake.channels[channel].pins == kept
    deleted = bot.fake.calls_to("chat.delete")
    assert len(deleted) == 2  # the person's, and the second summary's
    assert deleted[-1].args["ts"] != incident.summary_ts
    assert deleted[-1].args["ts"] not in [m.ts for m in bot.fake.messages(channel)]


async def test_a_deleted_announcement_is_no_longer_updated_nor_posted_again(bot: BotHarness) -> None:
    await bot.declare("P2 Search is slow")
    incident = await bot.incident(1)
    channel, where = incident.channel_id or "", incident.announcement_channel or ""
    await deleter(bot).chat_delete(channel=where, ts=incident.announcement_ts or "")

    await bot.command("update identified bad index on orders", channel=channel)
    await bot.settle()
    assert (await bot.incident(1)).announcement_ts == ""
    assert not [r for r in bot.replies() if "failed" in r], bot.replies()
    assert any("announcement was deleted in Slack" in e.text for e in await bot.timeline(1))

    updates = len(bot.fake.calls_to("chat.update"))
    await bot.command("update monitoring index rebuilt", channel=channel)
    await flows.finish_setup(bot.deps, incident_id=1, actor="U0ALICE")  # what Retry setup runs
    await bot.settle()
    assert [c for c in bot.fake.calls_to("chat.update")[updates:] if c.args.get("channel") == where] == []
    assert [m for m in bot.fake.messages(where) if not m.ephemeral_to] == []


async def test_two_changes_at_once_leave_the_newest_summary_announcement_and_stored_text(
    bot: BotHarness, caplog: pytest.LogCaptureFixture
) -> None:
    """A status update and a severity change a moment apart, the update's edits slow to reach Slack: they
    landed after the severity change's, so the summary, the announcement and the 📌'd summary's stored
    text said P1 for an incident that was P2."""
    incident = await bot.declare("P1 Checkout down")
    channel, ts = incident.channel_id or "", incident.summary_ts or ""
    where, announced = incident.announcement_channel or "", incident.announcement_ts or ""
    item = {"type": "message", "channel": channel, "ts": ts}
    await bot.event({"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item})
    caplog.set_level(logging.DEBUG, logger=standing.__name__)
    older = bot.fake.hold("chat.update", lambda args: "[P1]" in str(args.get("text")))

    await bot.command("update monitoring", channel=channel, settle=False)
    await until(lambda: len(bot.fake.held) == 2)  # the summary's and the announcement's edits
    await bot.command("sev P2", channel=channel, settle=False)

    def newer_edited() -> bool:
        return any("[P2]" in str(c.args.get("text")) for c in bot.fake.calls_to("chat.update"))

    def newer_waits() -> bool:
        return any("this refresh runs next" in r.getMessage() for r in caplog.records)

    await until(lambda: newer_edited() or newer_waits())  # edited at once (nothing ordered them), or waits its turn
    older.set()
    await bot.settle()

    newest = "INC-1 [P2] Checkout down: monitoring"
    for message in (bot.fake.channels[channel].find(ts), bot.fake.channels[where].find(announced)):
        assert message is not None and message.text == newest
    assert [e.text for e in await bot.timeline(1) if e.message_ts == ts] == [newest]
    # Nothing is kept per incident once its refreshes are done (a bot runs for months of incidents).
    assert len(bot.deps.standing_locks) == 0
    assert len(bot.deps.playbook_locks) == 0


async def test_a_change_refreshed_on_another_replica_is_not_left_behind_by_this_ones_older_edits(
    bot: BotHarness,
) -> None:
    """This replica renders P1 and its edits are slow; meanwhile the severity becomes P2 and the other
    replica (its own per-process locks) edits all three: the older edits landed last and stayed."""
    incident = await bot.declare("P1 Checkout down")
    channel, ts = incident.channel_id or "", incident.summary_ts or ""
    where, announced = incident.announcement_channel or "", incident.announcement_ts or ""
    older = bot.fake.hold("chat.update", lambda args: "[P1]" in str(args.get("text")))
    older_topic = bot.fake.hold("conversations.setTopic", lambda args: str(args.get("topic")).startswith("P1"))
    this_one = asyncio.create_task(standing.refresh(bot.deps, incident_id=1))
    await until(lambda: len(bot.fake.held) == 3)  # the topic's, the summary's and the announcement's edits

    async with bot.deps.db.session() as session:  # the other replica's severity change
        await session.exec(update(Incident).where(col(Incident.id) == 1).values(severity=Severity.P2))
        await session.commit()
    other = replace(bot.deps, standing_locks=KeyedLocks())
    assert await standing.refresh(other, incident_id=1) == []
    older.set()
    older_topic.set()
    assert await this_one == []
    await bot.settle()

    newest = "INC-1 [P2] Checkout down: investigating"
    for message in (bot.fake.channels[channel].find(ts), bot.fake.channels[where].find(announced)):
        assert message is not None and message.text == newest
    assert bot.fake.channels[channel].topic.startswith("P2")
