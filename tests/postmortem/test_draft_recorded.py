"""`/incident postmortem` when the database fails once Slack has the draft: the answer said the command
failed, so people shared it again. It says the draft is in the channel and not recorded, and the next
run records that draft instead of sharing a second one."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bot.timeline import events
from bot.timeline.models import Kind
from tests.fault.support import DatabaseOutage, unreachable_url
from tests.harness import BotHarness, until


@pytest.fixture
async def outage(bot: BotHarness, database_url: str, tmp_path: Path) -> AsyncIterator[DatabaseOutage]:
    down = DatabaseOutage(bot.deps, unreachable_url(database_url, str(tmp_path)))
    yield down
    await down.close()


def _drafts(bot: BotHarness, channel: str) -> list[str]:
    return [f.id for f in bot.fake.files.values() if f.completed and channel in f.channels]


async def _recorded(bot: BotHarness) -> list[str | None]:
    return [
        events.read_as(e, events.PostmortemEvent).file_id for e in await bot.timeline(1) if e.kind == Kind.POSTMORTEM
    ]


async def _lines(bot: BotHarness) -> list[str]:
    return [e.text for e in await bot.timeline(1) if e.kind == Kind.POSTMORTEM]


async def test_a_draft_shared_but_not_recorded_is_said_so_and_recorded_by_the_next_run(
    bot: BotHarness, outage: DatabaseOutage
) -> None:
    incident = await bot.declare()
    channel = incident.channel_id or ""
    gate = bot.fake.hold_after("files.completeUploadExternal")
    mark = len(bot.fake.responses)
    try:
        await bot.command("postmortem", channel=channel, settle=False)
        await until(lambda: bot.fake.held)  # Slack has shared it; its answer waits
        outage.start()
    finally:
        gate.set()
    await until(lambda: len(bot.fake.responses) > mark)
    outage.end()
    await bot.settle()
    [file_id] = _drafts(bot, channel)
    reply = bot.last_reply()
    assert reply.startswith(f"📝 Post-mortem draft for INC-1 shared in <#{channel}> as `INC-1-postmortem.md`, ")
    assert "but recording it on the timeline failed" in reply and "Do not share it again" in reply
    assert await _recorded(bot) == [None]  # noted pending before the upload

    await bot.command("postmortem", channel=channel)
    assert _drafts(bot, channel) == [file_id]  # not shared twice
    assert await _recorded(bot) == [file_id]
    reply = bot.last_reply()
    assert reply.startswith(f"📝 The post-mortem draft for INC-1 was shared in <#{channel}> as `INC-1-postmortem.md`")
    assert "it is recorded now" in reply

    await bot.command("postmortem", channel=channel)  # asked again: a fresh draft
    assert len(_drafts(bot, channel)) == 2 and (await _recorded(bot))[0] == file_id
    assert bot.last_reply().endswith("timeline events).")


async def test_an_upload_that_failed_is_said_so_and_shared_by_the_next_run(bot: BotHarness) -> None:
    incident = await bot.declare()
    channel = incident.channel_id or ""
    bot.fake.fail("files.completeUploadExternal", "not_in_channel")
    await bot.command("postmortem", channel=channel)
    assert bot.last_reply().startswith("⚠️") and _drafts(bot, channel) == []
    [event] = [e for e in await bot.timeline(1) if e.kind == Kind.POSTMORTEM]
    assert event.text.startswith("Post-mortem draft not shared: ")
    await bot.command("postmortem", channel=channel)
    [file_id] = _drafts(bot, channel)
    assert await _recorded(bot) == [None, file_id]
    assert bot.last_reply().startswith(f"📝 Post-mortem draft for INC-1 shared in <#{channel}>")


@pytest.mark.parametrize("error", ["internal_error", "missing_scope"])
async def test_when_slack_cannot_be_searched_for_the_unrecorded_draft_a_fresh_one_is_shared(
    bot: BotHarness, outage: DatabaseOutage, error: str
) -> None:
    """A draft shared and not recorded, then files.list fails (down, or the scope is missing): the command
    used to fail each time until Slack answered. A fresh draft is shared, and the answer says there may be
    two; the next run has nothing left to look for."""
    incident = await bot.declare()
    channel = incident.channel_id or ""
    gate = bot.fake.hold_after("files.completeUploadExternal")
    mark = len(bot.fake.responses)
    try:
        await bot.command("postmortem", channel=channel, settle=False)
        await until(lambda: bot.fake.held)
        outage.start()
    finally:
        gate.set()
    await until(lambda: len(bot.fake.responses) > mark)
    outage.end()
    await bot.settle()
    [first] = _drafts(bot, channel)

    bot.fake.fail("files.list", error, count=5)
    await bot.command("postmortem", channel=channel)
    drafts = _drafts(bot, channel)
    assert len(drafts) == 2 and drafts[0] == first, bot.last_reply()
    assert await _recorded(bot) == [None, drafts[1]]
    reply = bot.last_reply()
    assert reply.startswith(f"📝 Post-mortem draft for INC-1 shared in <#{channel}> as `INC-1-postmortem.md`"), reply
    assert "An earlier draft, shared at " in reply and "may be in the channel too" in reply
    assert "this one is the current one" in reply
    # The earlier line said "Sharing…" for ever: it says what is known of that draft now.
    earlier, fresh = await _lines(bot)
    assert earlier.startswith("Post-mortem draft not recorded: INC-1-postmortem.md may be in the channel"), earlier
    assert f"(Slack could not be searched: look for the shared post-mortem: Slack answered {error})" in earlier
    assert fresh == "Post-mortem draft shared: INC-1-postmortem.md"

    calls = len(bot.fake.calls_to("files.list"))
    await bot.command("postmortem", channel=channel)  # the last draft is recorded: no look, no warning
    assert len(_drafts(bot, channel)) == 3 and len(bot.fake.calls_to("files.list")) == calls
    assert "earlier draft" not in bot.last_reply()


async def test_an_earlier_draft_the_next_run_does_not_find_is_said_not_shared(
    bot: BotHarness, outage: DatabaseOutage
) -> None:
    """Slack refused the upload while the database was down, so its line was never relabelled: it read
    "Sharing…" for good, also once the next run had looked, found nothing and shared a fresh draft."""
    incident = await bot.declare()
    channel = incident.channel_id or ""
    gate = bot.fake.hold("files.completeUploadExternal")
    bot.fake.fail("files.completeUploadExternal", "not_in_channel")
    mark = len(bot.fake.responses)
    try:
        await bot.command("postmortem", channel=channel, settle=False)
        await until(lambda: bot.fake.held)
        outage.start()
    finally:
        gate.set()
    await until(lambda: len(bot.fake.responses) > mark)
    outage.end()
    await bot.settle()
    assert _drafts(bot, channel) == []
    assert await _lines(bot) == ["Sharing the post-mortem draft: INC-1-postmortem.md"]

    await bot.command("postmortem", channel=channel)
    [file_id] = _drafts(bot, channel)
    assert len(bot.fake.calls_to("files.list")) == 1
    assert await _lines(bot) == [
        "Post-mortem draft not shared: INC-1-postmortem.md was not found in the channel",
        "Post-mortem draft shared: INC-1-postmortem.md",
    ]
    assert await _recorded(bot) == [None, file_id]
