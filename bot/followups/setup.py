"""Wiring of follow-up issues: the tracker on `deps.issue_tracker` and the closed-issue checker (its timer)."""

from __future__ import annotations

import functools
import logging
import os
from datetime import timedelta
from typing import Any

from bot.clock import utc_text
from bot.deps import Deps, warning_check
from bot.followups import sweeps, unread
from bot.followups.checker import SWEEP, ClosedIssueChecker
from bot.followups.ports import TrackerError
from bot.followups.trackers import build
from bot.settings import Settings

log = logging.getLogger(__name__)


def setup(deps: Deps) -> None:
    config = deps.settings.config.issue_tracker
    if config is None:
        return
    try:
        deps.issue_tracker = build(config, http=deps.http)
    except TrackerError as exc:
        # `python -m bot check` reports it as an error; serving goes on without issues rather than not at all,
        # and /health says so for as long as it lasts (no follow-up offers *Create issue* meanwhile).
        log.error("follow-up issues are off: %s", exc)
        deps.health_probes["followups:check"] = functools.partial(_off_health, deps, f"follow-up issues are off: {exc}")
        return
    checker = ClosedIssueChecker(deps)
    deps.followup_checker = checker
    deps.on_start.append(checker.start)
    deps.on_stop.append(checker.stop)
    deps.health_probes["followups:check"] = functools.partial(followups_health, deps, checker)


# Beyond a sweep's lease (10 min, a rate-limiting tracker) and its wake-up: nobody is checking.
CHECK_OVERDUE = timedelta(minutes=15)


async def followups_health(deps: Deps, checker: ClosedIssueChecker) -> dict[str, Any]:
    """/health warns (never fails: paging does not depend on it) when issues are no longer checked."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        state = await sweeps.sweep_state(session, name=SWEEP)
        unread_since = await unread.unread_too_long(session, sweep=SWEEP)
    problems = [] if checker.running else ["its scheduler is not running"]
    if state is not None:
        due, error = state
        if now - due > CHECK_OVERDUE:
            problems.append(f"the check of closed issues is overdue since {due:%Y-%m-%d %H:%M} UTC")
        if error:
            problems.append(f"its last run failed: {error[:200]}")
    if unread_since is not None and not (state and state[1]):  # a failed last run says it already
        since, what = unread_since
        problems.append(f"{what} (issues left unread by every check since {utc_text(since)})")
    return warning_check(now, problems)


async def _off_health(deps: Deps, why: str) -> dict[str, Any]:
    return warning_check(deps.clock.now(), [why])


def check(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    """`python -m bot check`: the tracker's secrets are in the environment."""
    config = settings.config.issue_tracker
    if config is None:
        return [], [], []
    errors: list[str] = []
    for field in ("token_env", "email_env"):
        name = getattr(config, field)
        if name and not os.environ.get(name, "").strip():
            errors.append(f"issue_tracker.{field}: environment variable {name} is not set")
    where = {"github": config.repo, "jira": config.project, "linear": config.team_id}[config.kind]
    return errors, [], [f"follow-ups: issues go to {config.kind} ({where})"]
