"""/health says when follow-ups' issues are no longer checked: a warning (200), since paging does not depend on it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

from bot.clock import FakeClock
from bot.followups.ports import IssueState, TrackerError
from tests.fakes.slack_api import FakeSlack
from tests.followups.conftest import Tracker
from tests.followups.test_followups_e2e import checked_every_10m, items
from tests.harness import BotHarness


async def followups_check(bot: BotHarness) -> tuple[int, dict[str, Any]]:
    response = await bot.http.get(f"{bot.url}/health")
    return response.status_code, response.json()["checks"]["followups:check"][0]


class BrokenTracker:
    """The tracker adapter failing in a way it does not expect (not a TrackerError): the sweep fails."""

    def __init__(self, real: Any) -> None:
        self.real = real

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)

    async def state(self, *, key: str) -> IssueState:
        raise RuntimeError(f"unexpected answer for {key}")


async def test_a_sweep_overdue_or_failed_warns_and_a_good_one_clears_it(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker
) -> None:
    clock = FakeClock()
    async with checked_every_10m(fake_slack, database_url, tmp_path, tracker, clock) as (bot, _, checker):
        assert (await followups_check(bot))[1]["status"] == "pass"
        clock.advance(timedelta(minutes=10 + 16))  # due at 10 min; nobody ran it
        status, check = await followups_check(bot)
        assert status == 200 and check["status"] == "warn"
        assert check["output"].startswith("the check of closed issues is overdue since ")

        real = bot.deps.issue_tracker
        bot.deps.issue_tracker = BrokenTracker(real)  # type: ignore[assignment]
        assert await checker.run_due()
        status, check = await followups_check(bot)
        assert status == 200 and check["status"] == "warn"
        assert check["output"] == "its last run failed: RuntimeError: unexpected answer for " + tracker.keys()[0]

        bot.deps.issue_tracker = real
        clock.advance(timedelta(minutes=10, seconds=1))
        assert await checker.run_due()
        assert (await followups_check(bot))[1] == {"status": "pass", "time": clock.now().isoformat()}

        await checker.stop()
        assert (await followups_check(bot))[1]["output"] == "its scheduler is not running"


class UnreachableTracker(BrokenTracker):
    """The tracker refusing every read as a tracker does (a revoked token, an outage): TrackerError."""

    async def state(self, *, key: str) -> IssueState:
        raise TrackerError(f"GET issue {key}: 401 Bad credentials")


async def test_a_tracker_that_answers_no_read_warns_though_the_sweep_went_on(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker
) -> None:
    clock = FakeClock()
    async with checked_every_10m(fake_slack, database_url, tmp_path, tracker, clock) as (bot, incident, checker):
        real = bot.deps.issue_tracker
        bot.deps.issue_tracker = UnreachableTracker(real)  # type: ignore[assignment]
        clock.advance(timedelta(minutes=10, seconds=1))
        assert await checker.run_due()
        status, check = await followups_check(bot)
        assert status == 200 and check["status"] == "warn"
        assert check["output"] == (
            "its last run failed: could not read any of 1 issue(s) from the tracker: "
            f"GET issue {tracker.keys()[0]}: 401 Bad credentials"
        )
        bot.deps.issue_tracker = real  # the token is put right: the next sweep reads, and the warning goes
        clock.advance(timedelta(minutes=10, seconds=1))
        assert await checker.run_due()
        assert (await followups_check(bot))[1]["status"] == "pass"
        assert (await items(bot, incident.id or 0))[0].done  # and it did the work it could not do before
