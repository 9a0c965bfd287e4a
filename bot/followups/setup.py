"""Wiring of follow-up issues: the tracker on `deps.issue_tracker` and the closed-issue checker (its timer)."""

from __future__ import annotations

import logging
import os

from bot.deps import Deps
from bot.followups.checker import ClosedIssueChecker
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
        # `python -m bot check` reports it as an error; serving goes on without issues rather than not at all.
        log.error("follow-up issues are off: %s", exc)
        return
    checker = ClosedIssueChecker(deps)
    deps.followup_checker = checker
    deps.on_start.append(checker.start)
    deps.on_stop.append(checker.stop)


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
