"""kill -9 right after a resolve is committed, before its signal handlers ran, then a restart:
the post-mortem draft is still shared, and the unfinished post-mortem is still chased. And a crash
after the handlers ran but before that was noted: redoing them shares, chases and says nothing twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from bot.clock import FakeClock
from bot.db import Database
from bot.incidents import service as incidents
from bot.incidents.models import Incident
from bot.settings import normalise_database_url
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

CONFIG = {"escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}


async def _stay_up_a_day(bot: BotHarness, clock: FakeClock) -> None:
    await bot.settle()
    assert bot.deps.scheduler is not None and bot.deps.setup_sweep is not None
    for _ in range(26):  # the bot stays up for a day and more; its sweeps and timers run
        clock.advance(timedelta(hours=1))
        await bot.deps.setup_sweep.check()
        await bot.deps.scheduler.run()
        await bot.settle()


def _drafts(fake_slack: FakeSlack, channel: str) -> list[str]:
    return [f.filename for f in fake_slack.files.values() if f.completed and channel in f.channels]


def _chases(fake_slack: FakeSlack, channel: str) -> list[str]:
    return [m.text for m in fake_slack.messages(channel) if "post-mortem" in m.text and "not finished" in m.text]


async def test_a_resolve_interrupted_by_a_crash_still_gets_its_post_mortem(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        incident = await bot.declare()
    channel = incident.channel_id or ""
    assert channel

    # `/incident resolve` committed the row (flows.resolve's first step); the process died before
    # IncidentResolved reached its handlers (post-mortem upload, escalation's post-mortem chase).
    db = Database(normalise_database_url(database_url))
    try:
        async with db.session() as session:
            row = await incidents.get(session, number=1)
            await incidents.resolve(session, incident=row, summary="rolled back", actor="U0ALICE", now=clock.now())
    finally:
        await db.dispose()

    clock.advance(timedelta(seconds=30))
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        await _stay_up_a_day(bot, clock)
    assert len(_drafts(fake_slack, channel)) == 1, "the post-mortem draft was never shared"
    assert len(_chases(fake_slack, channel)) == 1, "the unfinished post-mortem was never chased"


async def test_resolve_work_done_before_a_crash_is_not_done_twice(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        incident = await bot.declare()
        channel = incident.channel_id or ""
        await bot.command("resolve rolled back", channel=channel)
        await bot.settle()
        # IncidentResolved's handlers ran; the process died before noting it.
        async with bot.deps.db.session() as session:
            await session.exec(update(Incident).values(resolve_handled_at=None))  # type: ignore[call-overload]
            await session.commit()
    assert len(_drafts(fake_slack, channel)) == 1
    said = {cid: len(c.messages) for cid, c in fake_slack.channels.items()}

    clock.advance(timedelta(seconds=30))
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        await _stay_up_a_day(bot, clock)
        assert (await bot.incident(1)).resolve_handled_at is not None  # redone, and noted this time
    assert len(_drafts(fake_slack, channel)) == 1, "the post-mortem draft was shared twice"
    assert len(_chases(fake_slack, channel)) == 1, "the unfinished post-mortem was chased twice"
    said_again = {cid: len(c.messages) - said.get(cid, 0) for cid, c in fake_slack.channels.items()}
    assert said_again == {cid: int(cid == channel) for cid in said_again}, "something was said twice"
