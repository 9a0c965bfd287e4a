"""Whether an earlier draft's line is still pending is its payload's `pending`, not its text (a text is for
people); a line written before that field existed is still told by its text, so a draft an old run left
"Sharing…" is settled, and one whose line said its outcome keeps it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.incidents import recovery
from bot.postmortem.sharing import SHARING
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, until
from tests.postmortem.test_draft_once import bot_on_a_clock


async def _lines(bot: BotHarness) -> list[tuple[str, bool | None]]:
    return [
        (e.text, events.read_as(e, events.PostmortemEvent).pending)
        for e in await bot.timeline(1)
        if e.kind == Kind.POSTMORTEM
    ]


async def _old_line(bot: BotHarness, *, text: str) -> None:
    """A command's draft line as written before `pending` existed: the same payload, without the key."""
    payload = events.PostmortemEvent(
        filename="INC-1-postmortem.md", format="markdown", bytes=100, trigger="command", events=3
    )
    assert "pending" not in payload.to_data()
    async with bot.deps.db.session() as session:
        await timeline.record(session, incident_id=1, at=bot.deps.clock.now(), text=text, payload=payload)


async def test_a_draft_line_is_pending_in_its_payload_until_its_outcome_is_known(bot: BotHarness) -> None:
    incident = await bot.declare()
    channel = incident.channel_id or ""
    gate = bot.fake.hold("files.completeUploadExternal")
    try:
        await bot.command("postmortem", channel=channel, settle=False)
        await until(lambda: bot.fake.held)
        assert await _lines(bot) == [(f"{SHARING}INC-1-postmortem.md", True)]
    finally:
        gate.set()
    await bot.settle()
    assert await _lines(bot) == [("Post-mortem draft shared: INC-1-postmortem.md", False)]

    bot.fake.fail("files.completeUploadExternal", "not_in_channel")
    await bot.command("postmortem", channel=channel)
    [*_, (text, pending)] = await _lines(bot)
    assert text.startswith("Post-mortem draft not shared: ") and pending is False


async def test_a_line_left_pending_before_the_field_existed_is_settled_by_the_next_run(bot: BotHarness) -> None:
    incident = await bot.declare()
    await _old_line(bot, text=f"{SHARING}INC-1-postmortem.md")

    await bot.command("postmortem", channel=incident.channel_id or "")
    assert len(bot.fake.calls_to("files.list")) == 1  # looked for the old run's draft first
    assert await _lines(bot) == [
        ("Post-mortem draft not shared: INC-1-postmortem.md was not found in the channel", False),
        ("Post-mortem draft shared: INC-1-postmortem.md", False),
    ]


async def test_a_line_that_said_its_outcome_before_the_field_existed_keeps_it(bot: BotHarness) -> None:
    incident = await bot.declare()
    said = "Post-mortem draft not shared: Slack answered not_in_channel"
    await _old_line(bot, text=said)

    await bot.command("postmortem", channel=incident.channel_id or "")
    assert await _lines(bot) == [(said, None), ("Post-mortem draft shared: INC-1-postmortem.md", False)]


async def test_a_line_is_not_pending_once_its_payload_says_so_whatever_its_text(bot: BotHarness) -> None:
    """The text of a completed line is not read: only a line from before the field is told by it."""
    incident = await bot.declare()
    payload = events.PostmortemEvent(filename="INC-1-postmortem.md", trigger="command", pending=False)
    async with bot.deps.db.session() as session:
        text = f"{SHARING}INC-1-postmortem.md"
        await timeline.record(session, incident_id=1, at=bot.deps.clock.now(), text=text, payload=payload)

    await bot.command("postmortem", channel=incident.channel_id or "")
    assert await _lines(bot) == [(text, False), ("Post-mortem draft shared: INC-1-postmortem.md", False)]


async def test_a_retried_resolve_draft_reads_pending_again_while_its_upload_is_under_way(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """The retry reuses the line of the attempt that failed: it kept reading "not shared" (with `pending`
    false) while the new upload was in progress, so a run that died during it left a line that said the
    draft was not in the channel, though it may have been."""
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        incident = await bot.declare()
        fake_slack.fail("files.completeUploadExternal", "internal_error")
        await bot.command("resolve rolled back", channel=incident.channel_id or "")
        await bot.settle()
        [(first, pending)] = await _lines(bot)
        assert first.startswith("Post-mortem draft not shared: ") and pending is False
        gate = fake_slack.hold("files.completeUploadExternal")
        clock.advance(timedelta(minutes=5))  # past the resolve's grace and the retry's back-off
        retry = asyncio.create_task(recovery.check(bot.deps))  # the resume sweep's check
        try:
            await until(lambda: fake_slack.held)
            assert await _lines(bot) == [(f"{SHARING}INC-1-postmortem.md", True)]
        finally:
            gate.set()
            await retry
        await bot.settle()
        assert await _lines(bot) == [("Post-mortem draft shared: INC-1-postmortem.md", False)]
    assert len([f for f in fake_slack.files.values() if f.completed]) == 1
