"""kill -9 at each step of an incident's setup, then a restart: one channel, one summary, one
announcement, and the declarer told.

A real `python -m bot` process (HTTP mode) talks to the fake Slack served by this test
(`SLACK_API_URL`). The fake holds the step's Web API call: `hold` (the call never reached Slack)
or `hold_after` (Slack did it, the bot never heard). The process is killed while it waits. The
lease the dead process held is then aged past `SETUP_LEASE` in the database, which is what
waiting two minutes would do, and the bot is started again: the start-up check resumes the setup.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.db import Database
from bot.escalation.models import Page
from bot.incidents import setup_rows
from bot.incidents.models import Incident
from bot.settings import normalise_database_url
from tests import slack_requests as req
from tests.fakes.slack_api import FakeSlack
from tests.harness import SECRET
from tests.replicas.process import BotProcess

BOT_YML = (
    "channels: {announcements: C0INCIDENTS, alerts: C0ALERTS}\n"
    "escalation:\n"
    "  levels:\n"
    "    - {name: On-call, after: 0m, notify: [U0BOB]}\n"
)

pytestmark = pytest.mark.slow


def _marked(event_type: str) -> Callable[[dict[str, Any]], bool]:
    return lambda args: event_type in json.dumps(args.get("metadata") or "")


# (step, method, held after Slack acted?, which calls)
STEPS: list[tuple[str, str, bool, Callable[[dict[str, Any]], bool]]] = [
    ("before the channel", "conversations.create", False, lambda args: True),
    ("channel made, not saved", "conversations.create", True, lambda args: True),
    ("inviting", "conversations.invite", False, lambda args: True),
    ("topic", "conversations.setTopic", False, lambda args: True),
    ("summary posted, not saved", "chat.postMessage", True, _marked("incident_summary")),
    ("pinning", "pins.add", False, lambda args: True),
    ("announcement posted, not saved", "chat.postMessage", True, _marked("incident_announcement")),
]


async def _wait(predicate: Callable[[], Awaitable[bool] | bool], within: float) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        result = predicate()
        if await result if isinstance(result, Awaitable) else result:
            return True
        await asyncio.sleep(0.05)
    return False


@pytest.mark.parametrize(("step", "method", "after", "when"), STEPS, ids=[s[0] for s in STEPS])
async def test_kill9_during_the_setup_then_restart_finishes_it_once(
    fake_slack: FakeSlack,
    database_url: str,
    tmp_path: Path,
    step: str,
    method: str,
    after: bool,
    when: Callable[[dict[str, Any]], bool],
) -> None:
    bot = BotProcess(fake=fake_slack, database_url=database_url, directory=tmp_path, bot_yml=BOT_YML)
    db = Database(normalise_database_url(database_url))

    async def incident() -> Incident | None:
        async with db.session() as session:
            return await session.get(Incident, 1, populate_existing=True)

    async def page_sent() -> bool:
        async with db.session() as session:
            pages = (await session.exec(select(Page).where(col(Page.sent_at).is_not(None)))).all()
            return bool(pages)

    async def finished() -> bool:
        found = await incident()
        return bool(found and found.summary_ts and found.announcement_ts and found.setup_claimed_at is None)

    # As `python -m bot check` requires: the bot is a member of the announcements channel (so it
    # can read there what it posted before the crash).
    fake_slack.channels["C0INCIDENTS"].members.add(fake_slack.bot_user_id)
    gate = (fake_slack.hold_after if after else fake_slack.hold)(method, when)
    try:
        await bot.start()
        body, headers = req.slash_command(
            "/incident",
            "declare P1 Checkout is down",
            secret=SECRET,
            user_id="U0ALICE",
            response_url=fake_slack.response_url("k", channel_id="C0GENERAL"),
        )
        async with httpx.AsyncClient(timeout=30) as client:
            assert (await client.post(f"{bot.url}/slack/events", content=body, headers=headers)).status_code == 200
        assert await _wait(lambda: bool(fake_slack.held), 30), f"{method} never called:\n{bot.log_tail()}"
        # The page goes out beside the setup; a kill while it is in flight is the page's own story
        # (its claim's lease, tests/replicas/test_kill9.py), not this test's: kill once it is recorded.
        assert await _wait(page_sent, 30), f"the page was not recorded:\n{bot.log_tail()}"
        bot.kill9()
        fake_slack.drop_held()  # a request the dead process never finished sending is not acted on
        gate.set()
        stranded = await incident()
        assert stranded is not None and stranded.setup_claimed_at is not None  # the dead run's lease
        async with db.session() as session:  # two minutes later: the lease has expired
            await session.exec(  # type: ignore[call-overload]
                update(Incident)
                .where(col(Incident.id) == 1)
                .values(setup_claimed_at=stranded.setup_claimed_at - setup_rows.SETUP_LEASE - timedelta(seconds=1))
            )
            await session.commit()

        await bot.start()
        assert await _wait(finished, 30), f"the setup was not resumed:\n{bot.log_tail()}"
        assert await _wait(lambda: any("finished the setup" in m.text for m in fake_slack.dms("U0ALICE")), 10)
        done = await incident()
        assert done is not None and done.channel_id is not None
        channel_id = done.channel_id
        assert await _wait(lambda: any("<@U0BOB>" in m.text for m in fake_slack.messages(channel_id)), 20), (
            "the page's channel mention never came"
        )
    finally:
        bot.stop()
        await db.dispose()

    channels = [c for c in fake_slack.channels.values() if c.name.startswith("inc-1-")]
    assert [c.id for c in channels] == [done.channel_id], f"{step}: channels {[c.name for c in channels]}"
    summaries = [m for m in fake_slack.messages(done.channel_id) if _marked("incident_summary")(vars(m))]
    announcements = [m for m in fake_slack.messages("C0INCIDENTS") if _marked("incident_announcement")(vars(m))]
    assert [m.ts for m in summaries] == [done.summary_ts], f"{step}: {len(summaries)} summaries"
    assert [m.ts for m in announcements] == [done.announcement_ts], f"{step}: {len(announcements)} announcements"
    assert fake_slack.channels[done.channel_id].pins == [done.summary_ts]
    assert "U0ALICE" in fake_slack.channels[done.channel_id].members
