"""Wiring of channel archiving: only when `channels.archive_after` is set."""

from __future__ import annotations

from bot.archive.flows import Archiver
from bot.deps import Deps
from bot.signals import IncidentResolved


def setup(deps: Deps) -> None:
    if deps.settings.config.channels.archive_after is None:
        return
    archiver = Archiver(deps)
    deps.services["archiver"] = archiver
    deps.bus.subscribe(IncidentResolved, archiver.on_resolved)
    deps.on_start.append(archiver.start)
    deps.on_stop.append(archiver.stop)
