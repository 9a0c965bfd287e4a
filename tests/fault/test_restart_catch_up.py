"""A restart with overdue pages: the pages go out, and the bot answers Slack and /health meanwhile."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.escalation.models import Page
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import start_bot

CONFIG = {"escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}
INCIDENTS = 3


async def test_server_is_up_while_overdue_pages_are_still_being_sent(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    first, stop_first = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    for n in range(INCIDENTS):
        await first.declare(f"P1 Down {n}")
    await stop_first()

    clock.advance(timedelta(minutes=5))  # the bot was down; every page is overdue now
    fake_slack.throttle("chat.postMessage", count=INCIDENTS, retry_after=1)  # a slow Slack
    second, stop_second = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    try:
        async with second.deps.db.session() as session:
            pending_when_up = len((await session.exec(select(Page).where(col(Page.sent_at).is_(None)))).all())
        health = await second.http.get(f"{second.url}/health")
        assert health.status_code == 200
        for _ in range(200):
            async with second.deps.db.session() as session:
                if not (await session.exec(select(Page).where(col(Page.sent_at).is_(None)))).all():
                    break
            await asyncio.sleep(0.05)
        paged = [m for m in fake_slack.dms("U0LEAD") if "Paged for" in m.text]
        assert len(paged) == INCIDENTS, "every overdue page exactly once"
    finally:
        await stop_second()
    assert pending_when_up > 0, "the server only started listening after the whole catch-up had finished"


README = Path(__file__).resolve().parents[2] / "README.md"
PROMISE = "a page that fell due while the bot was down is sent at start, marked late with how late"


async def test_a_page_that_fell_due_during_a_short_outage_is_marked_late_as_the_readme_says(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Only pages more than 60 s overdue were marked late; the README promises every page that fell
    due while the bot was down is. This test holds the two together."""
    words = " ".join(README.read_text(encoding="utf-8").split())  # however the paragraph is wrapped
    assert PROMISE in words, "the README's promise changed: change the behaviour too"
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    first, stop_first = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    await first.declare("P1 Down")
    await stop_first()

    clock.advance(timedelta(seconds=75))  # the page fell due 15 s ago, while the bot was down
    second, stop_second = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    try:
        for _ in range(400):  # the catch-up runs in the background after start
            async with second.deps.db.session() as session:
                (page,) = (await session.exec(select(Page).where(col(Page.level) == 1))).all()
            if page.sent_at is not None:
                break
            await asyncio.sleep(0.05)
    finally:
        await stop_second()
    assert page.sent_at is not None and page.late and page.late_seconds == 15
    (dm,) = [m for m in fake_slack.dms("U0LEAD") if "Paged for" in m.text]
    assert "late by 15s" in dm.text


async def test_a_page_that_falls_due_while_the_bot_is_up_is_not_late(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    bot, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    try:
        await bot.declare("P1 Down")
        clock.advance(timedelta(seconds=61))  # due a second ago: the sweep's ordinary slack, not an outage
        assert bot.deps.scheduler is not None
        await bot.deps.scheduler.run()
        async with bot.deps.db.session() as session:
            (page,) = (await session.exec(select(Page).where(col(Page.level) == 1))).all()
    finally:
        await stop()
    assert page.sent_at is not None and not page.late
    assert not [m for m in fake_slack.dms("U0LEAD") if "late by" in m.text]
