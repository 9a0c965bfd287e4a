"""/health says when archiving has stopped: a warning (200), since paging does not depend on it."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from tests.archive.support import archiver, resolved_incident
from tests.harness import BotHarness


async def archive_check(bot: BotHarness) -> tuple[int, dict[str, Any]]:
    response = await bot.http.get(f"{bot.url}/health")
    return response.status_code, response.json()["checks"]["archive:timers"][0]


async def test_an_archive_long_overdue_warns_until_it_is_done(abot: BotHarness, clock: FakeClock) -> None:
    await resolved_incident(abot, clock)
    assert (await archive_check(abot))[1]["status"] == "pass"  # planned, not due
    clock.advance(timedelta(days=7, minutes=10))
    assert (await archive_check(abot))[1]["status"] == "pass"  # due, within the sweep's margin
    clock.advance(timedelta(minutes=10))
    status, check = await archive_check(abot)
    assert status == 200 and check["status"] == "warn"
    assert check["output"].startswith("a channel's archive is overdue since ")
    assert await archiver(abot).run_due() == 1
    assert (await archive_check(abot))[1]["status"] == "pass"


async def test_a_stopped_archiver_warns(abot: BotHarness) -> None:
    await archiver(abot).stop()
    status, check = await archive_check(abot)
    assert status == 200 and check == {**check, "status": "warn", "output": "its scheduler is not running"}
