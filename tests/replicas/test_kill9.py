"""kill -9 between escalation levels: after the restart the remaining pages go out, each exactly once.

A real `python -m bot` process (HTTP mode) against the fake Slack, on SQLite or PostgreSQL. It is
killed only once every level-1 page is marked sent in the database: a kill between "DM delivered"
and "marked sent" is the documented rare duplicate (the claim's lease hands it to the next
process), which this test does not provoke.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import httpx
import pytest
from sqlmodel import col, select

from bot.db import Database
from bot.escalation.models import Page
from bot.settings import normalise_database_url
from tests import slack_requests as req
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET
from tests.replicas.process import BotProcess

INCIDENTS = 5
FIRST, SECOND = 2, 6
BOT_YML = (
    "channels: {announcements: C0INCIDENTS, alerts: C0ALERTS}\n"
    "escalation:\n"
    "  levels:\n"
    f"    - {{name: Team lead, after: {FIRST}s, notify: [U0LEAD]}}\n"
    f"    - {{name: CTO, after: {SECOND}s, notify: [U0CTO]}}\n"
)
_PAGED = re.compile(r"Paged for INC-(\d+) ")

pytestmark = pytest.mark.slow


def _paged(fake: FakeSlack, user: str) -> list[int]:
    return sorted(int(m.group(1)) for msg in fake.dms(user) if (m := _PAGED.search(msg.text)))


async def _wait(predicate: Callable[[], Awaitable[bool]], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if await predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(await predicate())


async def test_kill9_between_levels_then_restart_sends_the_rest_once(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    bot = BotProcess(fake=fake_slack, database_url=database_url, directory=tmp_path, bot_yml=BOT_YML)
    db = Database(normalise_database_url(database_url))

    async def level_sent(level: int) -> bool:
        async with db.session() as session:
            rows = await session.exec(select(Page).where(Page.level == level, col(Page.sent_at).is_not(None)))
            return len(rows.all()) == INCIDENTS

    try:
        await bot.start()
        async with httpx.AsyncClient(timeout=30) as client:
            for n in range(INCIDENTS):
                body, headers = req.slash_command(
                    "/incident",
                    f"declare P1 Killed {n}",
                    secret=SECRET,
                    response_url=fake_slack.response_url(f"k{n}", channel_id="C0GENERAL"),
                )
                assert (await client.post(f"{bot.url}/slack/events", content=body, headers=headers)).status_code == 200
        assert await _wait(lambda: level_sent(1), 30), f"level 1 not sent:\n{bot.log_tail()}"
        bot.kill9()
        assert _paged(fake_slack, "U0LEAD") == list(range(1, INCIDENTS + 1))
        before = _paged(fake_slack, "U0CTO")
        async with db.session() as session:
            due = max(p.due_at for p in (await session.exec(select(Page).where(Page.level == 2))).all())
        # Stay down until every level-2 page is overdue.
        await asyncio.sleep(max(0.0, due.timestamp() - time.time()) + 0.5)
        await bot.start()
        assert await _wait(lambda: level_sent(2), 20), f"level 2 not sent after restart:\n{bot.log_tail()}"
    finally:
        bot.stop()
        await db.dispose()
    assert _paged(fake_slack, "U0LEAD") == list(range(1, INCIDENTS + 1)), "level 1 exactly once each"
    assert _paged(fake_slack, "U0CTO") == list(range(1, INCIDENTS + 1)), (
        f"level 2 exactly once each (sent before the kill: {before})"
    )
