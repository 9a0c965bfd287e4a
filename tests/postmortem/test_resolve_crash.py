"""kill -9 right after a resolve is committed, before its signal handlers ran, then a restart:
the post-mortem draft is still shared, and the unfinished post-mortem is still chased. And a crash
after the handlers ran but before that was noted: redoing them shares, chases and says nothing twice."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import update

from bot.clock import FakeClock
from bot.incidents.models import Incident
from tests.conftest import make_settings
from tests.crash import resolve_then_die, stay_up
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot

CONFIG = {"escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}


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

    await resolve_then_die(database_url, clock=clock)

    clock.advance(timedelta(seconds=30))
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        await stay_up(bot, clock, every=timedelta(hours=1), times=26)  # a day and more
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
        await stay_up(bot, clock, every=timedelta(hours=1), times=26)  # a day and more
        assert (await bot.incident(1)).resolve_handled_at is not None  # redone, and noted this time
    assert len(_drafts(fake_slack, channel)) == 1, "the post-mortem draft was shared twice"
    assert len(_chases(fake_slack, channel)) == 1, "the unfinished post-mortem was chased twice"
    said_again = {cid: len(c.messages) - said.get(cid, 0) for cid, c in fake_slack.channels.items()}
    assert said_again == {cid: int(cid == channel) for cid in said_again}, "something was said twice"
