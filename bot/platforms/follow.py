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

from bot.exceptions import PlatformAuthError, PlatformError, PlatformRateLimited
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
    started = timer.monotonic()
    shown = deployment.status if not deployment.status.is_terminal else DeployStatus.QUEUED
    last_report = started
    latest = deployment
    errors = 0
    note = ""

    def elapsed() -> timedelta:
        return timedelta(seconds=max(0.0, timer.monotonic() - started))

    async def report(status: DeployStatus, text: str = "") -> None:
        nonlocal last_report
        last_report = timer.monotonic()
        if on_progress is None:
            return
        try:
            await on_progress(Progress(latest, status, elapsed(), text))
        except Exception:  # a failed chat update must not abandon a deploy half-watched
            log.exception("progress callback failed for deployment %s", latest.id)

    def timed_out() -> FollowResult:
        return FollowResult(latest, shown, elapsed(), timed_out=True, note=note)

    await report(shown)
    last = False
    while True:
        wait = interval
        try:
            latest = await platform.deployment_status(deployment.id)
        except PlatformAuthError:
            raise
        except PlatformError as exc:
            if last:
                return timed_out()
            if isinstance(exc, PlatformRateLimited):
                wait = max(interval, exc.retry_after or interval)
                note = f"{platform.display_name} is rate-limiting us, next look in {wait:g} s"
            else:
                errors += 1
                if errors >= MAX_CONSECUTIVE_ERRORS:
                    raise
                wait = interval * errors
                note = f"{exc} (retrying)"
            await report(shown, note)
        else:
            status = latest.status
            if status.is_terminal:
                await report(status)
                return FollowResult(latest, status, elapsed())
            if last:
                return timed_out()
            errors = 0
            note = ""
            if status.step > shown.step:
                shown = status
                await report(shown)
            elif timer.monotonic() - last_report >= heartbeat:
                await report(shown)
        remaining = budget - (timer.monotonic() - started)
        if remaining <= 0:
            return timed_out()
        await timer.sleep(min(wait, remaining))
        # The look after the final sleep is the last one: a deploy finishing right at the deadline counts.
        last = timer.monotonic() - started >= budget
