"""/health says when follow-ups' issues are no longer checked: a warning (200), since paging does not depend on it."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.followups import flows
from bot.followups.ports import IssueState, TrackerError
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.followups.conftest import Tracker
from tests.followups.test_followups_e2e import checked_every_10m, items
from tests.harness import BotHarness, running_bot


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


async def test_issues_some_reads_of_which_keep_failing_warn_after_an_hour_not_on_a_blip(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker
) -> None:
    """A token that lost access to a few issues (403) while the rest read: those follow-ups stop following
    their issues, and no sweep fails as a whole. /health says so once it has lasted an hour of sweeps."""
    clock = FakeClock()
    async with checked_every_10m(fake_slack, database_url, tmp_path, tracker, clock) as (bot, incident, checker):
        channel = incident.channel_id or ""
        for text in ("Add a login canary", "Alert on SSO errors", "Cache SSO metadata", "Runbook for SSO", "Drop v1"):
            await bot.command(f"action {text}", channel=channel)
        for item in (await items(bot, incident.id or 0))[1:]:
            await flows.create_issue(bot.deps, item_id=item.id or 0, actor="U0ALICE")
        _, *forbidden, deleted = tracker.keys()  # the first was closed (`checked_every_10m`)
        tracker.fake.delete(deleted)  # an answer, not a failed read: its link goes, as before

        async def sweep() -> tuple[int, dict[str, Any]]:
            clock.advance(timedelta(minutes=10, seconds=1))
            assert await checker.run_due()
            return await followups_check(bot)

        for key in forbidden[:3]:
            tracker.fake.forbid(key)
        assert (await sweep())[1]["status"] == "pass"  # one sweep: could be a blip
        assert (await items(bot, incident.id or 0))[0].done  # the readable ones were read
        tracker.fake.forbidden.clear()
        assert (await sweep())[1]["status"] == "pass"  # the blip passed: its streak ended with it

        for key in forbidden[:3]:
            tracker.fake.forbid(key)
        assert (await sweep())[1]["status"] == "pass"
        since = clock.now()
        for n in range(5):  # 50 minutes of sweeps that leave the three unread: not yet
            if n == 2:  # a sweep rate-limited at once reads none: it neither ends nor extends the streak
                tracker.fake.rate_limit_next(600)
            assert (await sweep())[1]["status"] == "pass"
        status, check = await sweep()  # an hour
        assert status == 200 and check["status"] == "warn"
        assert check["output"].startswith("3 issue(s) could not be read; the last error: ")
        assert ("Forbidden" if tracker.kind == "linear" else "(HTTP 403)") in check["output"]
        assert check["output"].endswith(f"(issues left unread by every check since {since:%Y-%m-%d %H:%M} UTC)")
        gone = [i for i in await items(bot, incident.id or 0) if i.issue_gone]
        assert len(gone) == (1 if tracker.kind != "linear" else 0)  # Linear's delete is its trash, kept a day

        tracker.fake.forbidden.clear()  # access given back: the next sweep reads them all
        assert (await sweep())[1]["status"] == "pass"


async def test_a_tracker_left_off_for_a_missing_secret_warns(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """issue_tracker: is configured but its token is not in the environment (a deploy that lost a secret):
    the bot serves without issues, no follow-up offers *Create issue*, and /health said nothing at all."""
    for name in ("TEST_GITHUB_TOKEN", "TEST_JIRA_TOKEN", "TEST_LINEAR_KEY"):
        monkeypatch.delenv(name, raising=False)
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={"issue_tracker": tracker.config}
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        assert bot.deps.issue_tracker is None
        status, check = await followups_check(bot)
        assert status == 200 and check["status"] == "warn"
        assert "follow-up issues are off" in check["output"] and tracker.config["token_env"] in check["output"]
