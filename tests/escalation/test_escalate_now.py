"""Paging the next level early (the playbooks' `page` step), through the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bot.clock import FakeClock
from tests.conftest import make_settings
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
