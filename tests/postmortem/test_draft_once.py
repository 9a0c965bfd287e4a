"""The resolve's post-mortem draft is shared once, even when recording it failed after Slack shared it
(the signal work retries the handler) or the process died in between (the sweep publishes the resolve
again): the retry finds the file in the channel and records it instead of sharing a second draft."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FakeClock
from bot.db import Database
from bot.postmortem.ports import PostmortemChat
from bot.timeline import events
from bot.timeline.models import Kind
from tests.conftest import make_settings
from tests.crash import stay_up
from tests.fakes.slack_api import FakeSlack
from tests.fault.support import unreachable_url
from tests.harness import BotHarness, running_bot, until


def _drafts(fake_slack: FakeSlack, channel: str) -> list[str]:
    return [f.id for f in fake_slack.files.values() if f.completed and channel in f.channels]


async def _recorded(bot: BotHarness) -> list[events.PostmortemEvent]:
    return [events.read_as(e, events.PostmortemEvent) for e in await bot.timeline(1) if e.kind == Kind.POSTMORTEM]


class DatabaseBlip:
    """The database refuses the one session opened next, then is back: a restart, a failover."""

    def __init__(self, db: Database, unreachable: str) -> None:
        self.db = db
        self.broken = create_async_engine(unreachable)

    def next_session(self) -> None:
        sessions = self.db.sessions

        def once() -> AsyncSession:
            self.db.sessions = sessions
            return async_sessionmaker(self.broken, class_=AsyncSession, expire_on_commit=False)()

        self.db.sessions = once  # type: ignore[assignment]


class BlipAfterUpload:
    """The post-mortem port, unchanged, except that the database blips once Slack shared the first file."""

    def __init__(self, real: PostmortemChat, blip: DatabaseBlip) -> None:
        self.real = real
        self.blip: DatabaseBlip | None = blip

    async def upload(self, **kwargs: Any) -> str:
        file_id = await self.real.upload(**kwargs)
        if self.blip is not None:
            self.blip.next_session()
            self.blip = None
        return file_id

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@asynccontextmanager
async def bot_on_a_clock(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[BotHarness]:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        yield bot


@pytest.mark.parametrize("lookup_fails", [False, True], ids=["found", "the first look fails"])
async def test_a_draft_whose_record_failed_is_recorded_by_the_retry_not_shared_again(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, lookup_fails: bool
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        incident = await bot.declare()
        channel = incident.channel_id or ""
        blip = DatabaseBlip(bot.deps.db, unreachable_url(database_url, str(tmp_path)))
        assert bot.deps.postmortem_chat is not None
        bot.deps.postmortem_chat = BlipAfterUpload(bot.deps.postmortem_chat, blip)
        try:
            await bot.command("resolve rolled back", channel=channel)
            await bot.settle()
            assert len(_drafts(fake_slack, channel)) == 1
            assert (await bot.incident(1)).resolve_handled_at is None, "not recorded, yet noted done"
            if lookup_fails:  # not knowing whether the draft is there, the retry shares nothing: tried again
                fake_slack.fail("files.list", "internal_error")
            await stay_up(bot, clock, every=timedelta(minutes=1), times=8)  # the retries, after the sweep's grace
            incident = await bot.incident(1)
            recorded = await _recorded(bot)
        finally:
            await blip.broken.dispose()
    drafts = _drafts(fake_slack, channel)
    assert len(drafts) == 1, f"{len(drafts)} drafts shared for one resolve"
    assert [(r.file_id, r.trigger) for r in recorded] == [(drafts[0], "resolve")], recorded
    assert incident.resolve_handled_at is not None
    assert len(fake_slack.calls_to("files.list")) == 1 + lookup_fails
    said = [m.text for m in fake_slack.messages(channel) if "could not be shared" in m.text]
    assert said == [], "the channel was told the draft it has was not shared"


@pytest.mark.parametrize("shared", [True, False], ids=["Slack shared it", "Slack never got it"])
async def test_a_crash_while_the_draft_is_uploaded_leaves_one_draft_after_the_resume(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, shared: bool
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        incident = await bot.declare()
        channel = incident.channel_id or ""
        # The process dies while the draft's upload is finished: after Slack shared it (the file's id never
        # came back), or before the request reached Slack.
        hold = fake_slack.hold_after if shared else fake_slack.hold
        gate = hold("files.completeUploadExternal")
        await bot.command("resolve rolled back", channel=channel, settle=False)
        await until(lambda: fake_slack.held)
        [resolved] = [t for t in bot.deps.background.tasks if t.get_name() == "INC-1 resolved"]
        resolved.cancel()  # kill -9 here: nothing after the Slack call runs
        if shared:
            gate.set()
        else:
            fake_slack.drop_held()
        await asyncio.gather(resolved, return_exceptions=True)
        await bot.settle()
        left = await _recorded(bot)
    assert len(_drafts(fake_slack, channel)) == int(shared)

    clock.advance(timedelta(seconds=30))
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        await stay_up(bot, clock, every=timedelta(minutes=1), times=5)
        incident = await bot.incident(1)
        recorded = await _recorded(bot)
    drafts = _drafts(fake_slack, channel)
    assert len(drafts) == 1, f"{len(drafts)} drafts shared for one resolve"
    assert [(r.file_id, r.trigger) for r in recorded] == [(drafts[0], "resolve")], recorded
    assert incident.resolve_handled_at is not None
    assert [(r.file_id, r.trigger) for r in left] == [(None, "resolve")], "nothing said a draft may be in Slack"


async def test_a_resolve_shares_one_draft_noted_before_the_upload_and_recorded_once(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with bot_on_a_clock(fake_slack, database_url, tmp_path, clock) as bot:
        incident = await bot.declare()
        channel = incident.channel_id or ""
        gate = fake_slack.hold("files.getUploadURLExternal")
        await bot.command("resolve rolled back", channel=channel, settle=False)
        await until(lambda: fake_slack.held)
        while_uploading = [e.text for e in await bot.timeline(1) if e.kind == Kind.POSTMORTEM]
        gate.set()
        await stay_up(bot, clock, every=timedelta(minutes=1), times=3)
        recorded = await _recorded(bot)
        timeline = [e.text for e in await bot.timeline(1) if e.kind == Kind.POSTMORTEM]
    drafts = _drafts(fake_slack, channel)
    assert len(drafts) == 1
    assert [(r.file_id, r.trigger, r.filename) for r in recorded] == [(drafts[0], "resolve", "INC-1-postmortem.md")]
    assert timeline == ["Post-mortem draft shared: INC-1-postmortem.md"]
    assert fake_slack.calls_to("files.list") == [], "the first attempt has nothing to look for"
    assert while_uploading == ["Sharing the post-mortem draft: INC-1-postmortem.md"], "a crash now leaves no trace"
