"""Following one confirmed action: the platform call, the deployment's progress, the health re-check.

Each phase is shown to the person who confirmed it through the `OpsProgress` port; a failing
progress update is logged and never stops the action.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import TypedDict

from bot.clock import format_duration
from bot.config import Service
from bot.deps import Deps
from bot.exceptions import (
    BotError,
    PlatformNotStarted,
    PlatformRateLimited,
    PlatformThrottledNotSent,
    PlatformUnsure,
)
from bot.health import checker
from bot.health.checker import HealthResult
from bot.health.classify import HealthState
from bot.ops.models import Action, Outcome
from bot.ops.plans import OpsProgress, Plan, Report, Step
from bot.ops.runtime import OpsRuntime
from bot.platforms.base import Deployment, DeployStatus, Platform
from bot.platforms.follow import FollowResult, Progress, Timer, follow

log = logging.getLogger(__name__)

# A restart or rollback throttled with a Retry-After this short (seconds) is asked once more after it.
RETRY_THROTTLED_WITHIN = 30.0


class Runner:
    def __init__(self, deps: Deps, ops: OpsRuntime, plan: Plan, progress: OpsProgress, t0: float) -> None:
        self.deps = deps
        self.ops = ops
        self.plan = plan
        self.progress = progress
        self.t0 = t0
        self.durations: dict[str, timedelta] = {}
        self.unsure_which = ""  # the platform could not tell its deployment from another one made at once

    def elapsed(self) -> timedelta:
        return timedelta(seconds=max(0.0, self.ops.timer.monotonic() - self.t0))

    async def show(self, phase: str, deployment: Deployment | None = None, note: str = "") -> None:
        try:
            await self.progress.progress(plan=self.plan, step=Step(phase, self.elapsed(), deployment, note))
        except Exception:
            log.exception("progress update failed for %s", self.plan.describe())

    async def run(self, platform: Platform, config: Service) -> Report:
        """Call, follow, re-check health; the report says how it ended and how long each phase took."""
        plan = self.plan
        timer = self.ops.timer
        await self.show("calling")
        call_start = timer.monotonic()
        try:
            handle = await self._call(platform)
        except BotError as exc:
            self.durations["call"] = _since(timer, call_start)
            return self._report(Outcome.FAILED, _call_failed(platform, plan, exc), unsure=_may_have_started(exc))
        self.durations["call"] = _since(timer, call_start)
        self.unsure_which = handle.unsure_which
        deploy_start = timer.monotonic()
        try:
            result = await self._follow(platform, handle, config)
        except BotError as exc:
            # The platform took the action: "try again" (its advice for a failed request) would run it twice.
            self.durations["deploy"] = _since(timer, deploy_start)
            cause = exc.reason if isinstance(exc, PlatformUnsure) else str(exc)
            message = (
                f"lost track of the deployment ({platform.display_name}: {cause}); it may still be under way: "
                f"check `/status {plan.service}` before you run it again"
            )
            return self._report(Outcome.FAILED, message, deployment=handle, unsure=True)
        self.durations["deploy"] = _since(timer, deploy_start)
        return await self._verdict(platform, config, result)

    async def _call(self, platform: Platform) -> Deployment:
        """The restart or rollback call; throttled with a short Retry-After where nothing was sent, asked once
        more after it.

        Only PlatformThrottledNotSent (a 429 on the action's own request, or on a read before it) says the
        platform did nothing, so asking again cannot act twice; at 3 a.m. waiting a few seconds is the bot's
        job, not the person's. Any other rate limit may have come after the action was sent.
        """
        plan = self.plan
        for attempt in (1, 2):
            try:
                if plan.action is Action.RESTART:
                    return await platform.restart(plan.redeploys.id if plan.redeploys else None)
                return await platform.rollback(plan.target.id if plan.target else None)
            except PlatformThrottledNotSent as exc:
                wait = exc.retry_after
                if attempt == 2 or wait is None or wait > RETRY_THROTTLED_WITHIN:
                    raise
                note = f"{platform.display_name} is rate-limiting the bot; asking again in {wait:g} s"
                await self.show("calling", note=note)
                await self.ops.timer.sleep(wait)
        raise AssertionError("unreachable")

    async def _follow(self, platform: Platform, handle: Deployment, config: Service) -> FollowResult:
        async def on_progress(update: Progress) -> None:
            await self.show(
                update.status.value if update.status.step < 3 else "deploying", update.deployment, update.note
            )

        return await follow(
            platform,
            handle,
            deadline=config.deploy_timeout,
            on_progress=on_progress,
            timer=self.ops.timer,
            interval=self.ops.poll_interval,
            heartbeat=self.ops.heartbeat,
        )

    async def _verdict(self, platform: Platform, config: Service, result: FollowResult) -> Report:
        """How a followed deployment ended: timed out, failed, or deployed (and then healthy or not)."""
        seen = _Seen(deployment=result.deployment, status=result.status)
        extra = result.deployment.meta.get("note") or ""  # "waiting for approval: ..."
        if result.timed_out:
            last = result.status.value + (f", {extra}" if extra else "")
            message = (
                f"no final status from {platform.display_name} after {format_duration(config.deploy_timeout)} "
                f"(last seen: {last}); check it on {platform.display_name}"
            )
            return self._report(Outcome.FAILED, message, timed_out=True, **seen)
        if not result.succeeded:
            message = f"the deployment ended {result.status.value}" + (f": {extra}" if extra else "")
            return self._report(Outcome.FAILED, message, **seen)
        health = None
        if config.health_url:
            await self.show("health", result.deployment)
            health_start = self.ops.timer.monotonic()
            health = await self._health(config)
            self.durations["health"] = _since(self.ops.timer, health_start)
        took = format_duration(self.durations["deploy"])
        if health is None:
            message = f"deployed in {took}; health not checked: no health_url configured for {self.plan.service}"
        elif health.state is HealthState.UNKNOWN:
            message = (
                f"deployed in {took}; health unknown: the re-check had no answer it could judge "
                f"({health.summary()}); check `/status {self.plan.service}` or the service itself"
            )
        elif health.ok:
            message = f"deployed in {took}; health {health.state.value}"
        else:
            message = f"deployed in {took}, but health is still {health.state.value}: {health.summary()}"
        return self._report(Outcome.SUCCEEDED, message, health=health, **seen)

    async def _health(self, config: Service) -> HealthResult:
        result = await checker.check(self.deps.http, name=self.plan.service, service=config, clock=self.deps.clock)
        for _ in range(self.ops.health_attempts - 1):
            if result.state is HealthState.HEALTHY:
                break
            await self.ops.timer.sleep(self.ops.health_interval)
            result = await checker.check(self.deps.http, name=self.plan.service, service=config, clock=self.deps.clock)
        return result

    def _report(
        self,
        outcome: Outcome,
        message: str,
        *,
        deployment: Deployment | None = None,
        status: DeployStatus | None = None,
        timed_out: bool = False,
        health: HealthResult | None = None,
        unsure: bool = False,
    ) -> Report:
        self.durations["total"] = self.elapsed()
        if self.unsure_which:  # whatever the outcome: it may be another deploy's
            message = f"{message}; {self.unsure_which}"
        durations = dict(self.durations)
        return Report(self.plan, outcome, message, deployment, status, timed_out, health, durations, unsure=unsure)


class _Seen(TypedDict):
    deployment: Deployment
    status: DeployStatus


def _call_failed(platform: Platform, plan: Plan, exc: BotError) -> str:
    """What the report says of a failed restart or rollback call: not sent (a read before it failed), may have
    started (no clear answer, or a rate limit that does not say it came before the action was sent), or refused."""
    name, verb = platform.display_name, plan.action.value
    if isinstance(exc, PlatformNotStarted):
        # Only a read failed: nothing was sent, so "it may have started" would send someone to dashboards.
        return (
            f"{name} did not answer what the bot reads before the {verb} ({exc.reason}), "
            f"so the {verb} was not sent and nothing was started: run `/{verb} {plan.service}` again"
        )
    if _may_have_started(exc):
        # "Refused, try again" would be wrong: a second /restart may restart it twice.
        reason = exc.reason if isinstance(exc, PlatformUnsure) else "it rate-limited the bot after the request"
        return (
            f"{name} did not confirm the {verb} ({reason}); it may have started anyway: "
            f"check `/status {plan.service}` before you run it again"
        )
    return f"{name} refused the {verb}: {exc}"


def _may_have_started(exc: BotError) -> bool:
    """No clear answer, or a rate limit that does not say it came before the action was sent."""
    if isinstance(exc, PlatformNotStarted | PlatformThrottledNotSent):
        return False
    return isinstance(exc, PlatformUnsure | PlatformRateLimited)


def _since(timer: Timer, start: float) -> timedelta:
    return timedelta(seconds=max(0.0, timer.monotonic() - start))
