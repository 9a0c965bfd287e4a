"""A storm of declarations: every incident's first page is due at once.

Paging must cost a bounded amount of database work per page. If every declaration starts its own
sweep over *all* due pages, N declarations make ~N² claim attempts (conditional UPDATEs); on
SQLite each one takes the write lock, and pages go out tens of seconds late
(benchmarks/page_lateness.py: p99 48 s for 100 incidents, 12,135 claim UPDATEs for 200 pages).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event

from bot.escalation.models import Page
from tests.fault.support import count, unpace_channel_creation
from tests.harness import BotHarness

STORM = 25


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"escalation": {"levels": [{"name": "On-call", "after": "0s", "notify": ["U0LEAD"]}]}}


@contextmanager
def statements(bot: BotHarness, prefix: str) -> Iterator[list[str]]:
    """SQL statements the bot's engines (the pager's own included) run that start with `prefix`."""
    seen: list[str] = []
    engines = [bot.deps.db.engine.sync_engine, bot.deps.db.for_pager().engine.sync_engine]

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith(prefix):
            seen.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", before)
    try:
        yield seen
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", before)


async def test_claim_work_per_page_is_bounded_in_a_declare_storm(bot: BotHarness) -> None:
    unpace_channel_creation(bot.deps)  # a storm of declares, not of channel creations
    with statements(bot, "UPDATE ESCALATION_PAGES") as updates:
        await asyncio.gather(*(bot.command(f"declare P1 Storm {n}", settle=False) for n in range(STORM)))
        await bot.settle()
        for _ in range(100):  # the escalation tasks finish just after the replies
            if await count(bot.deps, Page, Page.sent_at.is_not(None)) == STORM:  # type: ignore[union-attr]
                break
            await asyncio.sleep(0.05)
    assert await count(bot.deps, Page, Page.sent_at.is_not(None)) == STORM  # type: ignore[union-attr]
    pages = len([m for m in bot.fake.dms("U0LEAD") if "Paged for" in m.text])
    assert pages == STORM, "each page once"
    # Claim + finish per page, plus slack for a retry: 3 per page.
    assert STORM <= len(updates) <= 3 * STORM, f"{len(updates)} UPDATEs of escalation_pages for {STORM} pages"
