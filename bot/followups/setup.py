"""Wiring of follow-up issues: the tracker on `deps.issue_tracker` and the closed-issue checker."""

from __future__ import annotations

import logging

from bot.deps import Deps
from bot.followups.flows import ClosedIssueChecker
from bot.followups.ports import TrackerError
from bot.followups.trackers import build

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
    deps.on_start.append(checker.start)
    deps.on_stop.append(checker.stop)
