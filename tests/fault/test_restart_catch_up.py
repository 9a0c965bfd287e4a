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
