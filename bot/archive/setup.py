"""Wiring of channel archiving: only when `channels.archive_after` is set."""

from __future__ import annotations

import functools
from datetime import timedelta
from typing import Any

from bot.archive import service
from bot.archive.flows import Archiver
from bot.clock import format_duration
from bot.deps import Deps, warning_check
from bot.settings import Settings
from bot.signals import IncidentResolved


def setup(deps: Deps) -> None:
    if deps.settings.config.channels.archive_after is None:
        return
    archiver = Archiver(deps)
    deps.archiver = archiver
    deps.bus.subscribe(IncidentResolved, archiver.on_resolved, does="plan the channel's archive")
    deps.on_start.append(archiver.start)
    deps.on_stop.append(archiver.stop)
    deps.health_probes["archive:timers"] = functools.partial(archive_health, deps, archiver)


# Longer than a sweep's minute and a run's retries of a Slack blip: an archive this late is not archiving.
ARCHIVE_OVERDUE = timedelta(minutes=15)


async def archive_health(deps: Deps, archiver: Archiver) -> dict[str, Any]:
    """/health warns (never fails: paging does not depend on it) when archiving has stopped."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        due = await service.next_due(session)
    problems = [] if archiver.running else ["its scheduler is not running"]
    if due is not None and now - due > ARCHIVE_OVERDUE:
        problems.append(f"a channel's archive is overdue since {due:%Y-%m-%d %H:%M} UTC")
    return warning_check(now, problems)


def check(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    """`python -m bot check`: archiving before the post-mortem is chased would silence the reminder."""
    config = settings.config
    after = config.channels.archive_after
    if after is None:
        return [], [], []
    warnings = []
    if after <= config.reminders.postmortem_due_after:
        warnings.append(
            f"channels.archive_after ({format_duration(after)}) is not longer than reminders.postmortem_due_after "
            f"({format_duration(config.reminders.postmortem_due_after)}): channels are archived before an "
            "unfinished post-mortem is chased there"
        )
    return [], warnings, [f"channels: archived {_short(after)} after resolution"]


def _short(after: timedelta) -> str:
    days, rest = divmod(int(after.total_seconds()), 86400)
    return f"{days}d" if days and not rest else format_duration(after)
