"""Paging the next level early (the playbooks' `page` step), through the real app and the domain."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from tests.conftest import make_settings
from tests.escalation.conftest import FakePager, Start, config
from tests.escalation.test_paging_retries import failing_dms
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, start_bot

LEVELS = [
    {"name": "On-call engineer", "after": "0m", "notify": ["U0BOB"]},
    {"name": "Team lead", "after": "15m", "notify": ["U0LEAD"]},
]


@pytest.fixture
async def bot(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={"escalation": {"levels": LEVELS}}
    )
    harness, stop = await start_bot(
        fake=fake_slack, settings=settings, clock=FakeClock(datetime(2026, 11, 23, 10, tzinfo=UTC))
    )
    yield harness
    await stop()


def _page_dms(fake: FakeSlack, user: str) -> list[str]:
    return [m.text for m in fake.dms(user) if any(b.get("type") == "actions" for b in m.blocks or [])]


async def test_escalate_now_pages_the_next_level_once(bot: BotHarness) -> None:
    await bot.declare("P1 Checkout is down")
    assert len(_page_dms(bot.fake, "U0BOB")) == 1
    assert _page_dms(bot.fake, "U0LEAD") == []

    escalator = bot.deps.escalator
    assert escalator is not None
    said = await escalator.escalate_now(1, actor="U0ALICE")
    await bot.settle()
    assert "level 2 (Team lead)" in said
    assert len(_page_dms(bot.fake, "U0LEAD")) == 1

    said = await escalator.escalate_now(1, actor="U0ALICE")
    await bot.settle()
    assert "every escalation level has been paged" in said
    assert len(_page_dms(bot.fake, "U0LEAD")) == 1
    assert len(_page_dms(bot.fake, "U0BOB")) == 1


async def test_escalate_now_while_level_1_waits_for_a_retry_pages_level_2(
    clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.on_dm = failing_dms({"U0BOB": ["ratelimited"]})  # level 1 waits 30 s to try Bob again
    escalator, incident_id = await start(config(escalation={"levels": LEVELS}))
    assert pager.paged() == []
    said = await escalator.escalate_now(incident_id, actor="U0ALICE")
    assert "level 2 (Team lead)" in said
    assert pager.paged() == [(2, "U0LEAD")]
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.paged() == [(2, "U0LEAD"), (1, "U0BOB")]  # level 1's retry keeps its own time
