"""Following a deployment until it succeeds, fails, or runs out of time.

Polls `deployment_status` every few seconds and reports each step (queued → building →
deploying → done) with the elapsed time through a callback, so Slack can edit one message in
place. Time is injected (`Timer`), so tests run a ten-minute deadline in milliseconds.
Throttling and passing network errors do not end the watch; a refused token does.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Protocol

from bot.exceptions import PlatformAuthError, PlatformError, PlatformRateLimited, PlatformUnsure
from bot.platforms.base import Deployment, DeployStatus, Platform

log = logging.getLogger(__name__)

DEFAULT_INTERVAL = 3.0
DEFAULT_HEARTBEAT = 15.0
MAX_CONSECUTIVE_ERRORS = 5


class Timer(Protocol):
    def monotonic(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class RealTimer:
    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass(frozen=True)
class Progress:
    deployment: Deployment
    status: DeployStatus
    elapsed: timedelta
    note: str = ""  # "Railway is rate-limiting us, next look in 7 s"


ProgressCallback = Callable[[Progress], Awaitable[None]]


@dataclass(frozen=True)
class FollowResult:
    deployment: Deployment
    status: DeployStatus
    elapsed: timedelta
    timed_out: bool = False
    note: str = ""

    @property
    def succeeded(self) -> bool:
        return self.status is DeployStatus.SUCCESS and not self.timed_out


async def follow(
    platform: Platform,
    deployment: Deployment,
    *,
    deadline: timedelta | float,
    on_progress: ProgressCallback | None = None,
    timer: Timer | None = None,
    interval: float = DEFAULT_INTERVAL,
    heartbeat: float = DEFAULT_HEARTBEAT,
) -> FollowResult:
    """Poll until a terminal status or the deadline; raises only PlatformAuthError or repeated failures."""
    timer = timer or RealTimer()
    budget = deadline.total_seconds() if isinstance(deadline, timedelta) else float(deadline)
    watch = _Watch(platform, deployment, timer=timer, on_progress=on_progress, interval=interval, heartbeat=heartbeat)
    await watch.report(watch.shown)
    last = False
    while True:
        try:
            watch.latest = await platform.deployment_status(deployment.id)
        except PlatformAuthError:
            raise
        except PlatformError as exc:
            if last:
                return watch.timed_out()
            wait = await watch.failed(exc)
        else:
            if watch.latest.status.is_terminal:
                await watch.report(watch.latest.status)
                return FollowResult(watch.latest, watch.latest.status, watch.elapsed())
            if last:
                return watch.timed_out()
            wait = await watch.running(watch.latest.status)
        remaining = budget - (timer.monotonic() - watch.started)
        if remaining <= 0:
            return watch.timed_out()
        await timer.sleep(min(wait, remaining))
        # The look after the final sleep is the last one: a deploy finishing right at the deadline counts.
        last = timer.monotonic() - watch.started >= budget


class _Watch:
    """What `follow` remembers between looks: the status shown, the last report, the errors in a row."""

    def __init__(
        self,
        platform: Platform,
        deployment: Deployment,
        *,
        timer: Timer,
        on_progress: ProgressCallback | None,
        interval: float,
        heartbeat: float,
    ) -> None:
        self.platform, self.timer, self.on_progress = platform, timer, on_progress
        self.interval, self.heartbeat = interval, heartbeat
        self.started = self.last_report = timer.monotonic()
        self.shown = deployment.status if not deployment.status.is_terminal else DeployStatus.QUEUED
        self.latest = deployment
        self.errors = 0
        self.note = ""

    def elapsed(self) -> timedelta:
        return timedelta(seconds=max(0.0, self.timer.monotonic() - self.started))

    def timed_out(self) -> FollowResult:
        return FollowResult(self.latest, self.shown, self.elapsed(), timed_out=True, note=self.note)

    async def report(self, status: DeployStatus, text: str = "") -> None:
        self.last_report = self.timer.monotonic()
        if self.on_progress is None:
            return
        try:
            await self.on_progress(Progress(self.latest, status, self.elapsed(), text))
        except Exception:  # a failed chat update must not abandon a deploy half-watched
            log.exception("progress callback failed for deployment %s", self.latest.id)

    async def failed(self, exc: PlatformError) -> float:
        """The wait before the next look after a failed one; raises after too many failures in a row."""
        if isinstance(exc, PlatformRateLimited):
            wait = max(self.interval, exc.retry_after or self.interval)
            self.note = f"{self.platform.display_name} is rate-limiting us, next look in {wait:g} s"
        else:
            self.errors += 1
            if self.errors >= MAX_CONSECUTIVE_ERRORS:
                raise exc
            wait = self.interval * self.errors
            # Not the error's "try again shortly": that is the bot's own job here.
            cause = exc.reason if isinstance(exc, PlatformUnsure) else str(exc)
            self.note = f"{self.platform.display_name} did not answer ({cause}); looking again in {wait:g} s"
        await self.report(self.shown, self.note)
        return wait

    async def running(self, status: DeployStatus) -> float:
        """Report a step forward or a new note from the platform (a heartbeat while nothing moves);
        the wait before the next look."""
        self.errors = 0
        note = str(self.latest.meta.get("note") or "")  # "waiting for approval: ..."
        moved = status.step > self.shown.step
        if moved:
            self.shown = status
        if moved or note != self.note or self.timer.monotonic() - self.last_report >= self.heartbeat:
            self.note = note
            await self.report(self.shown, note)
        return self.interval
