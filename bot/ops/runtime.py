"""What the ops flows need beyond Deps: the platforms, timings, the directory, service names."""

from __future__ import annotations

import difflib
from dataclasses import dataclass, field
from typing import Protocol

from bot.deps import Deps
from bot.exceptions import NotFound
from bot.ops.service import Directory
from bot.platforms.base import Platform
from bot.platforms.follow import RealTimer, Timer


class PlatformLookup(Protocol):
    def get(self, service: str) -> Platform: ...


@dataclass
class OpsRuntime:
    """What the flows need beyond Deps; `deps.ops`, built by `bot.ops.setup`."""

    platforms: PlatformLookup
    timer: Timer = field(default_factory=RealTimer)
    poll_interval: float = 3.0
    heartbeat: float = 15.0
    health_attempts: int = 4  # a fresh deploy may need a few seconds before /health answers
    health_interval: float = 5.0
    history: int = 10


class RuntimeTimer:
    """The platforms' own waits (a read asked once more, a look for a new deployment) on the runtime's timer,
    whichever it is when they wait: a restart's every wait then runs on one clock, a test's fake one too."""

    def __init__(self) -> None:
        self.runtime: OpsRuntime | None = None

    def _timer(self) -> Timer:
        return self.runtime.timer if self.runtime is not None else _REAL

    def monotonic(self) -> float:
        return self._timer().monotonic()

    async def sleep(self, seconds: float) -> None:
        await self._timer().sleep(seconds)


_REAL = RealTimer()


def runtime(deps: Deps) -> OpsRuntime:
    if deps.ops is None:
        raise RuntimeError("the ops domain is not set up (bot.ops.setup has not run)")
    return deps.ops


def directory(deps: Deps) -> Directory | None:
    return deps.ops_directory


def resolve_service(deps: Deps, name: str) -> str:
    """The configured service a user meant (case-insensitive), or NotFound with the closest names."""
    services = deps.settings.config.services
    wanted = name.strip().lower()
    if wanted in services:
        return wanted
    close = difflib.get_close_matches(wanted, list(services), n=3, cutoff=0.5)
    hint = f"; did you mean {' or '.join(close)}?" if close else ""
    known = ", ".join(sorted(services)) or "none"
    raise NotFound(f"unknown service {name!r}{hint} (services: {known})")
