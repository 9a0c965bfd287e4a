"""/status: the health of every service (or one, with its recent deployments), free of Slack."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta

from bot.deps import Deps
from bot.exceptions import NotFound, PlatformError
from bot.health import checker
from bot.health.checker import HealthResult
from bot.health.classify import HealthState
from bot.ops.outcomes import health_check
from bot.ops.runtime import resolve_service, runtime
from bot.platforms.base import Deployment, Platform
from bot.timeline import events
from bot.timeline import service as timeline

# Seconds /status <service> waits for the platform's deployment list (at least; the health timeout if longer).
DEPLOYMENTS_WAIT = 5.0


@dataclass(frozen=True)
class StatusReport:
    results: list[HealthResult]
    overall: HealthState
    checked_at: datetime
    elapsed: timedelta
    service: str | None = None
    platform_name: str | None = None
    deployments: list[Deployment] = field(default_factory=list)
    current: Deployment | None = None
    deploy_error: str = ""


async def status(
    deps: Deps, *, service: str | None = None, actor: str | None = None, incident_id: int | None = None
) -> StatusReport:
    """Check every service (or one, with its recent deployments); record on the incident's timeline."""
    if not deps.settings.config.services:
        raise NotFound("no services in bot.yml: add them under `services:` to use /status")
    started = deps.clock.now()
    timer = asyncio.get_running_loop().time
    t0 = timer()
    if service is None:
        results = await checker.check_all(deps.http, deps.settings.config.services, clock=deps.clock)
        report = StatusReport(results, checker.overall(results), started, timedelta(seconds=timer() - t0))
    else:
        report = replace(await _one(deps, service, started), elapsed=timedelta(seconds=timer() - t0))
    if incident_id is not None:
        async with deps.db.session() as session:
            await timeline.record(
                session,
                incident_id=incident_id,
                at=started,
                actor=actor,
                text=status_line(report),
                payload=events.HealthChecked(
                    results=[health_check(r) for r in report.results], overall=report.overall.value
                ),
            )
    return report


async def _one(deps: Deps, service: str, started: datetime) -> StatusReport:
    """One service: its health and, when it has a platform, its recent deployments (fetched together)."""
    name = resolve_service(deps, service)
    platform = _platform_or_none(deps, name)
    health_task = checker.check(deps.http, name=name, service=deps.settings.config.services[name], clock=deps.clock)
    if platform is None:
        result = await health_task
        deployments: list[Deployment] = []
        current = None
        problem = ""
    else:
        budget = max(deps.settings.config.services[name].timeout.total_seconds(), DEPLOYMENTS_WAIT)
        recent = _recent(platform, limit=5, budget=budget)
        result, (deployments, current, problem) = await asyncio.gather(health_task, recent)
    return StatusReport(
        [result],
        checker.overall([result]),
        started,
        timedelta(0),  # the caller times the whole check
        service=name,
        platform_name=platform.display_name if platform else None,
        deployments=deployments,
        current=current,
        deploy_error=problem,
    )


def status_line(report: StatusReport) -> str:
    """`Health: 18 healthy, 1 failing (billing: HTTP 503), 1 unreachable (search)`."""
    counts: dict[HealthState, list[HealthResult]] = {}
    for result in report.results:
        counts.setdefault(result.state, []).append(result)
    parts = []
    for state in sorted(counts, key=lambda s: s.rank):
        group = counts[state]
        text = f"{len(group)} {state.value}"
        if state is not HealthState.HEALTHY and state is not HealthState.UNKNOWN:
            named = ", ".join(_why(r) for r in group[:5])
            text += f" ({named}{', …' if len(group) > 5 else ''})"
        parts.append(text)
    return "Health: " + ", ".join(parts)


def _why(result: HealthResult) -> str:
    if result.failing:
        return f"{result.service}: {', '.join(d.name for d in result.failing[:3])}"
    return f"{result.service}: {result.reason}" if result.reason else result.service


async def _recent(platform: Platform, *, limit: int, budget: float) -> tuple[list[Deployment], Deployment | None, str]:
    """The recent deployments within `budget` seconds: a slow platform must not hold up the health answer."""
    try:
        async with asyncio.timeout(budget):
            deployments, current = await platform.snapshot(limit=limit)
    except TimeoutError:
        return [], None, f"{platform.display_name} did not list its deployments within {budget:g} s"
    except PlatformError as exc:
        return [], None, str(exc)
    return deployments, current, ""


def _platform_or_none(deps: Deps, name: str) -> Platform | None:
    if deps.settings.config.services[name].platform is None:
        return None
    try:
        return runtime(deps).platforms.get(name)
    except (NotFound, RuntimeError):
        return None
