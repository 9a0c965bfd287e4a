"""/status, /restart and /rollback: the flows behind the commands, free of Slack.

A restart or rollback happens in two requests: `prepare` builds a `Plan` (service, platform,
live deployment, target) that the user confirms; `execute` runs it. Between the two the plan
travels as a small `PlanRef` (in the Confirm button), so nothing is kept in memory and any
replica can take the click. `execute` re-checks the clicker's permission, refuses a plan whose
live deployment changed since it was shown, and claims the confirmation with a unique audit row
so a double click acts once. Every outcome is audited; in an incident it is also written to
the timeline (`deploy` and `health` events).
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import secrets
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any, Protocol

from bot.clock import format_duration
from bot.config import Service
from bot.deps import Deps
from bot.exceptions import BotError, InvalidState, NotFound, PermissionDenied, PlatformError
from bot.health import checker
from bot.health.checker import HealthResult
from bot.health.classify import HealthState
from bot.incidents import access
from bot.ops import service as audit
from bot.ops.clicks import refused
from bot.ops.models import Action, AuditLog, Outcome, PendingAction
from bot.ops.service import AlreadyHandled, Directory
from bot.platforms.base import Deployment, DeployStatus, Platform, pick_rollback_target, rollback_candidates
from bot.platforms.follow import Progress, RealTimer, Timer, follow
from bot.timeline import service as timeline
from bot.timeline.models import Kind

log = logging.getLogger(__name__)


# --- ports and settings --------------------------------------------------------------------------


class PlatformLookup(Protocol):
    def get(self, service: str) -> Platform: ...


@dataclass
class OpsRuntime:
    """What the flows need beyond Deps; `deps.services["ops"]`, built by `bot.ops.setup`."""

    platforms: PlatformLookup
    timer: Timer = field(default_factory=RealTimer)
    poll_interval: float = 3.0
    heartbeat: float = 15.0
    health_attempts: int = 4  # a fresh deploy may need a few seconds before /health answers
    health_interval: float = 5.0
    history: int = 10


def runtime(deps: Deps) -> OpsRuntime:
    ops: OpsRuntime = deps.get("ops")
    return ops


def directory(deps: Deps) -> Directory | None:
    found: Directory | None = deps.services.get("ops_directory")
    return found


PHASES = ("calling", "queued", "building", "deploying", "health")


@dataclass(frozen=True)
class Step:
    """Where a running action is: one of PHASES, how long it has run, and the deployment seen."""

    phase: str
    elapsed: timedelta
    deployment: Deployment | None = None
    note: str = ""


class OpsProgress(Protocol):
    """Shows a running action to the person who confirmed it (Slack: one message edited in place)."""

    async def progress(self, *, plan: Plan, step: Step) -> None: ...

    async def finished(self, *, plan: Plan, report: Report) -> None: ...


# --- plans ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlanRef:
    """The confirmation's content, small enough for a button value (Slack allows 2000 characters)."""

    action: Action
    service: str
    current_id: str | None
    target_id: str | None
    requested_by: str
    incident_id: int | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))

    def encode(self) -> str:
        return json.dumps(
            {
                "a": self.action.value,
                "s": self.service,
                "c": self.current_id,
                "t": self.target_id,
                "u": self.requested_by,
                "i": self.incident_id,
                "r": self.request_id,
            },
            separators=(",", ":"),
        )

    @classmethod
    def decode(cls, value: str) -> PlanRef:
        try:
            raw = json.loads(value)
            return cls(
                action=Action(raw["a"]),
                service=str(raw["s"]),
                current_id=raw.get("c"),
                target_id=raw.get("t"),
                requested_by=str(raw["u"]),
                incident_id=int(raw["i"]) if raw.get("i") is not None else None,
                request_id=str(raw["r"]),
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise InvalidState("this confirmation is damaged or from an older version: run the command again") from exc


@dataclass(frozen=True)
class Plan:
    action: Action
    service: str
    platform: str  # kind: railway | vercel | kubernetes | webhook
    platform_name: str  # shown: "Railway"
    current: Deployment | None
    target: Deployment | None = None  # rollback only
    candidates: tuple[Deployment, ...] = ()  # rollback: other deployments one may pick by ID
    problem: str = ""  # rollback without a usable target: why
    requested_by: str = ""
    incident_id: int | None = None
    request_id: str = field(default_factory=lambda: secrets.token_hex(8))

    @property
    def ready(self) -> bool:
        return not self.problem and (self.action is Action.RESTART or self.target is not None)

    @property
    def ref(self) -> PlanRef:
        return PlanRef(
            action=self.action,
            service=self.service,
            current_id=self.current.id if self.current else None,
            target_id=self.target.id if self.target else None,
            requested_by=self.requested_by,
            incident_id=self.incident_id,
            request_id=self.request_id,
        )

    def describe(self) -> str:
        """One plain line: what will happen."""
        live = self.current.id if self.current else "nothing live"
        if self.action is Action.RESTART:
            return f"Restart {self.service} on {self.platform_name} (live: {live})"
        target = self.target.id if self.target else "?"
        return f"Roll back {self.service} on {self.platform_name} from {live} to {target}"


@dataclass(frozen=True)
class Report:
    plan: Plan
    outcome: Outcome
    message: str
    deployment: Deployment | None = None
    deploy_status: DeployStatus | None = None
    timed_out: bool = False
    health: HealthResult | None = None
    durations: dict[str, timedelta] = field(default_factory=dict)
    audit_id: int | None = None
    actor: str = ""

    @property
    def succeeded(self) -> bool:
        return self.outcome is Outcome.SUCCEEDED


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


# --- /status -------------------------------------------------------------------------------------


async def status(
    deps: Deps, *, service: str | None = None, actor: str | None = None, incident_id: int | None = None
) -> StatusReport:
    """Check every service (or one, with its recent deployments); record on the incident's timeline."""
    services = deps.settings.config.services
    if not services:
        raise NotFound("no services in bot.yml: add them under `services:` to use /status")
    started = deps.clock.now()
    timer = asyncio.get_running_loop().time
    t0 = timer()
    if service is None:
        results = await checker.check_all(deps.http, services, clock=deps.clock)
        report = StatusReport(results, checker.overall(results), started, timedelta(seconds=timer() - t0))
    else:
        name = resolve_service(deps, service)
        platform = _platform_or_none(deps, name)
        health_task = checker.check(deps.http, name=name, service=services[name], clock=deps.clock)
        if platform is None:
            result = await health_task
            deployments: list[Deployment] = []
            current = None
            problem = ""
        else:
            result, (deployments, current, problem) = await asyncio.gather(health_task, _recent(platform, limit=5))
        report = StatusReport(
            [result],
            checker.overall([result]),
            started,
            timedelta(seconds=timer() - t0),
            service=name,
            platform_name=platform.display_name if platform else None,
            deployments=deployments,
            current=current,
            deploy_error=problem,
        )
    if incident_id is not None:
        async with deps.db.session() as session:
            await timeline.record(
                session,
                incident_id=incident_id,
                kind=Kind.HEALTH,
                at=started,
                actor=actor,
                text=status_line(report),
                data={"results": [_health_data(r) for r in report.results], "overall": report.overall.value},
            )
    return report


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


async def _recent(platform: Platform, *, limit: int) -> tuple[list[Deployment], Deployment | None, str]:
    try:
        deployments, current = await platform.snapshot(limit=limit)
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


# --- /restart and /rollback ----------------------------------------------------------------------


async def prepare(
    deps: Deps,
    *,
    action: Action | str,
    service: str,
    user_id: str,
    target_id: str | None = None,
    incident_id: int | None = None,
    channel_id: str | None = None,
) -> Plan:
    """What would happen, for the confirmation; refusals raise PermissionDenied and are audited."""
    action = Action(action)
    name = resolve_service(deps, service)
    config: Service = deps.settings.config.services[name]
    asked = PlanRef(action, name, current_id=None, target_id=target_id, requested_by=user_id, incident_id=incident_id)
    await _require_permission(deps, asked, user_id=user_id, channel_id=channel_id, platform=config.platform)
    platform = runtime(deps).platforms.get(name)
    deployments, current = await platform.snapshot(limit=runtime(deps).history)
    common: dict[str, Any] = {
        "action": action,
        "service": name,
        "platform": platform.kind,
        "platform_name": platform.display_name,
        "current": current,
        "requested_by": user_id,
        "incident_id": incident_id,
    }
    if action is Action.RESTART:
        return await _pending(deps, Plan(**common), channel_id=channel_id)
    others = [d for d in deployments if current is None or d.id != current.id]
    candidates = rollback_candidates(deployments, current) or others
    try:
        target = pick_rollback_target(deployments, current, target_id)
    except NotFound as exc:
        return Plan(**common, candidates=tuple(candidates[:8]), problem=str(exc))
    rest = [d for d in candidates if d.id != target.id]
    return await _pending(deps, Plan(**common, target=target, candidates=tuple(rest[:5])), channel_id=channel_id)


async def _pending(deps: Deps, plan: Plan, *, channel_id: str | None) -> Plan:
    """Keep the plan shown for confirmation; its buttons carry only `plan.request_id`."""
    ref = plan.ref
    async with deps.db.session() as session:
        session.add(
            PendingAction(
                id=ref.request_id,
                created_at=deps.clock.now(),
                action=ref.action.value,
                service=ref.service,
                current_id=ref.current_id,
                target_id=ref.target_id,
                requested_by=ref.requested_by,
                incident_id=ref.incident_id,
                channel_id=channel_id,
            )
        )
        await session.commit()
    return plan


async def pending(deps: Deps, *, value: str, user_id: str, what: str) -> PlanRef:
    """The confirmation a Confirm/Cancel click names by id, as stored; anything else is refused and audited."""
    found = None
    if value and len(value) <= 64 and value.isascii() and value.isalnum():
        async with deps.db.session() as session:
            found = await session.get(PendingAction, value)
    if found is None:
        await refused(deps, actor=user_id, what=what, claimed=value, reason="no such confirmation")
        raise InvalidState("this confirmation is unknown or from an older version: run the command again")
    ref = PlanRef(
        action=Action(found.action),
        service=found.service,
        current_id=found.current_id,
        target_id=found.target_id,
        requested_by=found.requested_by,
        incident_id=found.incident_id,
        request_id=found.id,
    )
    if found.incident_id is not None:
        try:
            await access.find(deps, number=found.incident_id, person=user_id)
        except NotFound:
            await refused(
                deps, actor=user_id, what=what, claimed=value, reason="cannot see its incident", incident_id=None
            )
            raise
    return ref


async def cancel(deps: Deps, *, ref: PlanRef, user_id: str, channel_id: str | None = None) -> None:
    """The requester (or anyone allowed to run it) said no; recorded once."""
    if user_id != ref.requested_by and not await _decide(deps, ref.action, user_id):
        raise PermissionDenied(
            f"only {PermissionDenied.PEOPLE} or people who may {ref.action.value} can cancel this",
            people=[ref.requested_by],
        )
    config = deps.settings.config.services.get(ref.service)
    await _audit(
        deps,
        ref,
        actor=user_id,
        channel_id=channel_id,
        platform=config.platform if config else None,
        outcome=Outcome.CANCELLED,
        claim=True,
        timeline_text=f"{ref.action.verb} of {ref.service} cancelled",
    )


async def execute(
    deps: Deps, *, ref: PlanRef, user_id: str, progress: OpsProgress, channel_id: str | None = None
) -> Report:
    """Run a confirmed plan: platform call, follow, health re-check, report; every outcome audited."""
    ops = runtime(deps)
    t0 = ops.timer.monotonic()
    name = resolve_service(deps, ref.service)
    ref = replace(ref, service=name)
    config = deps.settings.config.services[name]
    await _require_permission(deps, ref, user_id=user_id, channel_id=channel_id, platform=config.platform)
    async with deps.db.session() as session:
        if await audit.by_request(session, request_id=ref.request_id) is not None:
            raise AlreadyHandled(ref.request_id)
    platform = ops.platforms.get(name)
    record = partial(_audit, deps, ref, actor=user_id, channel_id=channel_id, platform=platform.kind)
    try:
        current = await platform.current_deployment()
    except BotError as exc:
        # Confirmed but never started: audited (without claiming the confirmation, so it can be retried).
        await record(
            outcome=Outcome.FAILED,
            detail=f"could not start: {exc}",
            timeline_text=f"{ref.action.verb} of {name} could not start: {exc}",
        )
        raise
    if (current.id if current else None) != ref.current_id:
        now_live = current.id if current else "nothing"
        reason = (
            f"the live deployment of {name} changed since this was shown (was {ref.current_id or 'nothing'}, "
            f"now {now_live}): run /{ref.action.value} {name} again"
        )
        await record(
            outcome=Outcome.REFUSED,
            detail=reason,
            claim=True,
            timeline_text=f"{ref.action.verb} of {name} not run: {reason}",
        )
        raise InvalidState(reason)
    # Only the target's id is shown or used from here on; the platform looks it up again itself.
    target = Deployment(ref.target_id, DeployStatus.UNKNOWN) if ref.target_id is not None else None
    plan = Plan(
        action=ref.action,
        service=name,
        platform=platform.kind,
        platform_name=platform.display_name,
        current=current,
        target=target,
        requested_by=ref.requested_by,
        incident_id=ref.incident_id,
        request_id=ref.request_id,
    )
    entry = await record(
        outcome=Outcome.STARTED,
        claim=True,
        finished=False,
        timeline_text=f"{plan.describe()}: started",
        timeline_data={"platform": platform.kind, "from": ref.current_id, "to": ref.target_id},
    )
    assert entry.id is not None
    runner = _Runner(deps, ops, plan, progress, t0)
    try:
        report = await runner.run(platform, config)
    except Exception:
        # A bug must not leave the audit row `started` forever: it is logged, recorded and reported as failed.
        log.exception("%s crashed", plan.describe())
        report = Report(plan, Outcome.FAILED, "the bot failed while following it (logged); check the platform")
    report = replace(report, audit_id=entry.id, actor=user_id)
    async with deps.db.session() as session:
        await audit.finish(
            session,
            audit_id=entry.id,
            at=deps.clock.now(),
            outcome=report.outcome,
            detail=report.message,
            # A restart's deployment is known only now; a rollback keeps the target that was chosen.
            target_deployment=report.deployment.id if report.deployment and ref.target_id is None else None,
            incident_id=ref.incident_id,
            actor=user_id,
            timeline_events=_timeline_events(report),
        )
    try:
        await progress.finished(plan=plan, report=report)
    except Exception:
        log.exception("could not show the report of %s", plan.describe())
    return report


class _Runner:
    def __init__(self, deps: Deps, ops: OpsRuntime, plan: Plan, progress: OpsProgress, t0: float) -> None:
        self.deps = deps
        self.ops = ops
        self.plan = plan
        self.progress = progress
        self.t0 = t0

    def elapsed(self) -> timedelta:
        return timedelta(seconds=max(0.0, self.ops.timer.monotonic() - self.t0))

    async def show(self, phase: str, deployment: Deployment | None = None, note: str = "") -> None:
        try:
            await self.progress.progress(plan=self.plan, step=Step(phase, self.elapsed(), deployment, note))
        except Exception:
            log.exception("progress update failed for %s", self.plan.describe())

    async def run(self, platform: Platform, config: Service) -> Report:
        plan = self.plan
        timer = self.ops.timer
        durations: dict[str, timedelta] = {}
        await self.show("calling")
        call_start = timer.monotonic()
        try:
            if plan.action is Action.RESTART:
                handle = await platform.restart()
            else:
                handle = await platform.rollback(plan.target.id if plan.target else None)
        except BotError as exc:
            durations["call"] = _since(timer, call_start)
            return self._report(
                Outcome.FAILED, f"{platform.display_name} refused the {plan.action.value}: {exc}", durations=durations
            )
        durations["call"] = _since(timer, call_start)

        async def on_progress(update: Progress) -> None:
            await self.show(
                update.status.value if update.status.step < 3 else "deploying", update.deployment, update.note
            )

        deploy_start = timer.monotonic()
        try:
            result = await follow(
                platform,
                handle,
                deadline=config.deploy_timeout,
                on_progress=on_progress,
                timer=timer,
                interval=self.ops.poll_interval,
                heartbeat=self.ops.heartbeat,
            )
        except BotError as exc:
            durations["deploy"] = _since(timer, deploy_start)
            return self._report(
                Outcome.FAILED, f"lost track of the deployment: {exc}", deployment=handle, durations=durations
            )
        durations["deploy"] = _since(timer, deploy_start)
        if result.timed_out:
            message = (
                f"no final status from {platform.display_name} after {format_duration(config.deploy_timeout)} "
                f"(last seen: {result.status.value}); check it on {platform.display_name}"
            )
            return self._report(
                Outcome.FAILED,
                message,
                deployment=result.deployment,
                status=result.status,
                timed_out=True,
                durations=durations,
            )
        if not result.succeeded:
            extra = result.deployment.meta.get("note") or ""
            message = f"the deployment ended {result.status.value}" + (f": {extra}" if extra else "")
            return self._report(
                Outcome.FAILED, message, deployment=result.deployment, status=result.status, durations=durations
            )
        health = None
        if config.health_url:
            await self.show("health", result.deployment)
            health_start = timer.monotonic()
            health = await self._health(config)
            durations["health"] = _since(timer, health_start)
        took = format_duration(durations["deploy"])
        if health is None:
            message = f"deployed in {took}; no health_url to re-check"
        elif health.ok:
            message = f"deployed in {took}; health {health.state.value}"
        else:
            message = f"deployed in {took}, but health is still {health.state.value}: {health.summary()}"
        return self._report(
            Outcome.SUCCEEDED,
            message,
            deployment=result.deployment,
            status=result.status,
            health=health,
            durations=durations,
        )

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
        durations: dict[str, timedelta],
    ) -> Report:
        durations["total"] = self.elapsed()
        return Report(self.plan, outcome, message, deployment, status, timed_out, health, durations)


def _since(timer: Timer, start: float) -> timedelta:
    return timedelta(seconds=max(0.0, timer.monotonic() - start))


def _timeline_events(report: Report) -> list[tuple[str, str, dict[str, Any]]]:
    plan = report.plan
    verb = "succeeded" if report.succeeded else "failed"
    text = f"{plan.describe()}: {verb}, {report.message}"
    data: dict[str, Any] = {
        "action": plan.action.value,
        "service": plan.service,
        "platform": plan.platform,
        "outcome": report.outcome.value,
        "from": plan.current.id if plan.current else None,
        "to": plan.target.id if plan.target else None,
        "deployment": report.deployment.id if report.deployment else None,
        "durations": {k: round(v.total_seconds(), 1) for k, v in report.durations.items()},
    }
    events: list[tuple[str, str, dict[str, Any]]] = [(Kind.DEPLOY.value, text, data)]
    if report.health is not None:
        events.append(
            (
                Kind.HEALTH.value,
                f"After the {plan.action.value}: {report.health.summary()}",
                {"results": [_health_data(report.health)]},
            )
        )
    return events


def _health_data(result: HealthResult) -> dict[str, Any]:
    return {
        "service": result.service,
        "state": result.state.value,
        "http_status": result.http_status,
        "latency_ms": result.latency_ms,
        "reason": result.reason,
        "failing": [d.name for d in result.failing],
    }


async def _decide(deps: Deps, action: Action, user_id: str) -> audit.Decision:
    return await audit.check_permission(
        action=action, user_id=user_id, permissions=deps.settings.config.permissions, directory=directory(deps)
    )


async def _require_permission(
    deps: Deps, ref: PlanRef, *, user_id: str, channel_id: str | None, platform: str | None
) -> None:
    """PermissionDenied, audited (without claiming the confirmation), unless `user_id` may do `ref.action`."""
    decision = await _decide(deps, ref.action, user_id)
    if decision:
        return
    await _audit(
        deps,
        ref,
        actor=user_id,
        channel_id=channel_id,
        platform=platform,
        outcome=Outcome.REFUSED,
        detail=decision.plain,
        timeline_text=f"{ref.action.verb} of {ref.service} refused: {decision.plain}",
    )
    raise PermissionDenied(f"you may not {ref.action.value} {ref.service}: {decision.reason}", people=decision.people)


async def _audit(
    deps: Deps,
    ref: PlanRef,
    *,
    actor: str,
    channel_id: str | None,
    platform: str | None,
    outcome: Outcome,
    timeline_text: str,
    detail: str = "",
    claim: bool = False,
    finished: bool = True,
    timeline_data: dict[str, Any] | None = None,
) -> AuditLog:
    """One audit row about `ref`; `claim` uses up the confirmation (a second click is AlreadyHandled)."""
    async with deps.db.session() as session:
        return await audit.record(
            session,
            at=deps.clock.now(),
            actor=actor,
            action=ref.action,
            service=ref.service,
            platform=platform,
            from_deployment=ref.current_id,
            target_deployment=ref.target_id,
            outcome=outcome,
            detail=detail,
            incident_id=ref.incident_id,
            channel_id=channel_id,
            finished=finished,
            request_id=ref.request_id if claim else None,
            timeline_text=timeline_text,
            timeline_data=timeline_data,
        )
