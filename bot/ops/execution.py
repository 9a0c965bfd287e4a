"""Running a confirmed restart or rollback: checks, claim, the run itself, the final audit and report.

`execute` re-checks the clicker's permission, refuses a plan whose live deployment changed since
it was shown, and claims the confirmation with a unique audit row so a double click acts once.
The run (platform call, following the deployment, health re-check) is `bot.ops.runner.Runner`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import timedelta
from functools import partial
from typing import NoReturn

from bot.clock import format_duration
from bot.deps import Deps
from bot.exceptions import BotError, InvalidState, NotFound
from bot.incidents import access
from bot.incidents.models import Incident
from bot.ops import recovery
from bot.ops import service as audit
from bot.ops.models import Action, AuditLog, Outcome
from bot.ops.outcomes import record_outcome, timeline_events
from bot.ops.permissions import require_permission
from bot.ops.plans import OpsProgress, Plan, PlanRef, Report
from bot.ops.runner import Runner
from bot.ops.runtime import OpsRuntime, resolve_service, runtime
from bot.ops.service import AlreadyHandled
from bot.platforms.base import Deployment, DeployStatus, Platform
from bot.platforms.reads import read_once_more

log = logging.getLogger(__name__)

Record = Callable[..., Awaitable[AuditLog]]

# A Confirm older than this is refused: what it showed (the live deployment, the service's health,
# why it was wanted) is that old, and at 3 a.m. a button scrolled up from an earlier incident is an
# easy mis-click. Running the command again shows what is live now, in a second.
CONFIRMATION_EXPIRES = timedelta(minutes=15)


async def execute(
    deps: Deps, *, ref: PlanRef, user_id: str, progress: OpsProgress, channel_id: str | None = None
) -> Report:
    """Run a confirmed plan: platform call, follow, health re-check, report; every outcome audited."""
    ops = runtime(deps)
    t0 = ops.timer.monotonic()
    name = resolve_service(deps, ref.service)
    ref = replace(ref, service=name)
    config = deps.settings.config.services[name]
    await require_permission(deps, ref, user_id=user_id, channel_id=channel_id, platform=config.platform)
    async with deps.db.session() as session:
        if await audit.by_request(session, request_id=ref.request_id) is not None:
            raise AlreadyHandled(ref.request_id)
        since = ref.shown_at
        later = await audit.acted_since(session, service=name, since=since, besides=ref.request_id) if since else None
    platform = ops.platforms.get(name)
    record: Record = partial(record_outcome, deps, ref, actor=user_id, channel_id=channel_id, platform=platform.kind)
    if since is not None and (age := deps.clock.now() - since) > CONFIRMATION_EXPIRES:
        await _expired(ref, age, record)
    if later is not None:
        await _superseded(deps, ref, later, record, person=user_id)
    await _incident_still_open(deps, ref, record)
    plan = _plan(ref, platform, *await _live_as_shown(platform, ref, record, ops=ops))
    try:
        entry = await record(
            outcome=Outcome.STARTED,
            claim=True,
            finished=False,
            exclusive=True,
            timeline_text=f"{plan.describe()}: started",
        )
    except audit.Busy as busy:  # someone else's started first (another person, another replica)
        if busy.other.outcome != Outcome.STARTED.value:
            await _superseded(deps, ref, busy.other, record, person=user_id)
        await _refuse(ref, record, await busy_refusal(deps, ref.action, name, busy.other, person=user_id))
    assert entry.id is not None
    try:
        report = await Runner(deps, ops, plan, progress, t0).run(platform, config)
    except Exception:
        # A bug must not leave the audit row `started` forever: it is logged, recorded and reported as failed.
        log.exception("%s crashed", plan.describe())
        report = Report(plan, Outcome.FAILED, "the bot failed while following it (logged); check the platform")
    report = replace(report, audit_id=entry.id, actor=user_id)
    await _finish(deps, ref, report, audit_id=entry.id, actor=user_id)
    try:
        await progress.finished(plan=plan, report=report)
    except Exception:
        log.exception("could not show the report of %s", plan.describe())
    return report


async def _expired(ref: PlanRef, age: timedelta, record: Record) -> NoReturn:
    """Refuse (and use up) a confirmation shown longer ago than CONFIRMATION_EXPIRES."""
    minutes = int(age.total_seconds() // 60)
    shown = f"{minutes} minutes ago" if minutes < 120 else f"{minutes // 60} hours ago"
    reason = (
        f"this confirmation was shown {shown} (they expire after {CONFIRMATION_EXPIRES.seconds // 60} minutes): "
        f"run /{ref.action.value} {ref.service} again to see what is live now"
    )
    await _refuse(ref, record, InvalidState(reason))


async def _incident_still_open(deps: Deps, ref: PlanRef, record: Record) -> None:
    """Refuse (and use up) a confirmation whose incident was resolved after it was shown: the service it
    was for has recovered or been dealt with, and a late click would restart it for nothing."""
    if ref.incident_id is None or ref.shown_at is None:
        return
    async with deps.db.session() as session:
        incident = await session.get(Incident, ref.incident_id)
    if incident is None or incident.is_open or (incident.resolved_at and incident.resolved_at <= ref.shown_at):
        return
    reason = (
        f"{incident.ref} was resolved after this was shown: run /{ref.action.value} {ref.service} again "
        "if it is still needed"
    )
    await _refuse(ref, record, InvalidState(reason))


async def busy_refusal(deps: Deps, action: Action, service: str, running: AuditLog, *, person: str) -> InvalidState:
    """Why a restart or rollback of `service` is not run while `running` (another one) is followed.

    A replica that died while following it leaves it `started` until the sweep closes it: the refusal
    says when that is at the latest, so the person knows whether to wait or to act on the platform.
    """
    doing = "restarted" if running.action == Action.RESTART.value else "rolled back"
    named = await may_name(deps, running, person=person)
    started = format_duration(deps.clock.now() - running.at)
    clears = recovery.interrupted_by(deps, running.at)
    reason = (
        f"{service} is being {doing} right now {_by(named)} (started {started} ago): wait until it has "
        f"finished, check `/status {service}`, then run /{action.value} {service} again if it is still needed. "
        f"If the bot stopped while following it, it counts as interrupted from {InvalidState.TIME} "
        "and can be run again then"
    )
    return InvalidState(reason, people=(running.actor,) if named else (), times=(clears,))


async def may_name(deps: Deps, other: AuditLog, *, person: str) -> bool:
    """Whether `person` may be told who ran `other`: not when it ran in a private incident they cannot
    see (to them that incident does not exist, and who is at it would tell of it)."""
    if other.incident_id is None or other.actor == person:
        return True
    try:
        await access.find(deps, number=other.incident_id, person=person)
    except NotFound:
        return False
    return True


def _by(named: bool) -> str:
    return f"by {BotError.PEOPLE}" if named else "by someone else"


async def _superseded(deps: Deps, ref: PlanRef, later: AuditLog, record: Record, *, person: str) -> NoReturn:
    """Refuse (and use up) a confirmation shown before someone else restarted or rolled back the service.

    Railway restarts in place, so the live deployment alone does not tell that it was restarted since.
    """
    done = "restarted" if later.action == Action.RESTART.value else "rolled back"
    named = await may_name(deps, later, person=person)
    reason = (
        f"{ref.service} was {done} {_by(named)} after this was shown ({later.outcome}): "
        f"check `/status {ref.service}` and run /{ref.action.value} {ref.service} again if it is still needed"
    )
    await _refuse(ref, record, InvalidState(reason, people=(later.actor,) if named else ()))


async def _refuse(ref: PlanRef, record: Record, refusal: InvalidState) -> NoReturn:
    """Audit a refusal that uses the confirmation up, put it on the timeline, and raise it."""
    await record(
        outcome=Outcome.REFUSED,
        detail=str(refusal),
        claim=True,
        timeline_text=f"{ref.action.verb} of {ref.service} not run: {refusal}",
    )
    raise refusal


async def _live_as_shown(
    platform: Platform, ref: PlanRef, record: Record, *, ops: OpsRuntime
) -> tuple[Deployment | None, Deployment | None]:
    """The live deployment and, for a restart with nothing live, the one it redeploys, when they are still
    the ones the user saw; otherwise refused (and audited)."""
    name = ref.service
    redeploy = ref.action is Action.RESTART and ref.current_id is None

    async def look() -> tuple[list[Deployment], Deployment | None]:
        if redeploy:
            return await platform.snapshot(limit=ops.history)
        return [], await platform.current_deployment()

    try:
        deployments, current = await read_once_more(look, timer=ops.timer, what=f"reading what is live on {name}")
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
        await _refuse(ref, record, InvalidState(reason))
    redeploys = platform.restart_deploys(deployments, current) if redeploy else None
    if (redeploys.id if redeploys else None) != ref.redeploys_id:
        await _refuse(ref, record, InvalidState(_redeploys_changed(platform, ref, redeploys)))
    return current, redeploys


def _redeploys_changed(platform: Platform, ref: PlanRef, now: Deployment | None) -> str:
    """A restart with nothing live redeploys the newest deployment: one made since the confirmation (CI
    deployed meanwhile) would be redeployed in place of the one the person confirmed."""
    shown = ref.redeploys_id or "nothing"
    instead = f"{now.id} ({now.status.value})" if now else "nothing"
    return (
        f"nothing is live on {ref.service}, and what {platform.display_name} would redeploy changed since this "
        f"was shown (was {shown}, now {instead}): run /{ref.action.value} {ref.service} again"
    )


def _plan(ref: PlanRef, platform: Platform, current: Deployment | None, redeploys: Deployment | None = None) -> Plan:
    # Only the target's id is shown or used from here on; the platform looks it up again itself.
    target = Deployment(ref.target_id, DeployStatus.UNKNOWN) if ref.target_id is not None else None
    return Plan(
        action=ref.action,
        service=ref.service,
        platform=platform.kind,
        platform_name=platform.display_name,
        current=current,
        target=target,
        redeploys=redeploys,
        requested_by=ref.requested_by,
        incident_id=ref.incident_id,
        request_id=ref.request_id,
    )


async def _finish(deps: Deps, ref: PlanRef, report: Report, *, audit_id: int, actor: str) -> None:
    async with deps.db.session() as session:
        await audit.finish(
            session,
            audit_id=audit_id,
            at=deps.clock.now(),
            outcome=report.outcome,
            detail=_redeployed(report) + report.message,
            # A restart's deployment is known only now; a rollback (or a redeploy) keeps the one that was chosen.
            target_deployment=report.deployment.id if report.deployment and ref.deploys_id is None else None,
            incident_id=ref.incident_id,
            actor=actor,
            timeline_events=timeline_events(report),
        )


def _redeployed(report: Report) -> str:
    """The audit's detail names what a restart with nothing live redeployed (its rows have no live one), and
    the deployment that made: its `target_deployment` is the one redeployed."""
    redeploys, made = report.plan.redeploys, report.deployment
    if redeploys is None:
        return ""
    new = f" as {made.id}" if made is not None and made.id != redeploys.id else ""
    return f"redeployed {redeploys.id} ({redeploys.status.value}; nothing was live){new}: "
