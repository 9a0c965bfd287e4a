"""/restart and /rollback before the click: the plan shown, the pending confirmation, cancelling.

A restart or rollback happens in two requests: `prepare` builds a `Plan` (service, platform,
live deployment, target) and stores it as a pending action that the Confirm/Cancel buttons name
by id; `pending` reads it back for the click (a button's value is a hint, not a fact), and
`bot.ops.execution.execute` runs it.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any, NoReturn

from bot.config import Service
from bot.deps import Deps
from bot.exceptions import BotError, InvalidState, NotFound, PermissionDenied
from bot.incidents import access
from bot.ops import service as audit
from bot.ops.clicks import refused
from bot.ops.execution import busy_refusal
from bot.ops.models import Action, Outcome, PendingAction
from bot.ops.outcomes import record_outcome
from bot.ops.permissions import decide, require_permission
from bot.ops.plans import Plan, PlanRef
from bot.ops.runtime import OpsRuntime, resolve_service, runtime
from bot.platforms.base import Deployment, Platform, pick_rollback_target, rollback_candidates, rollback_snapshot
from bot.platforms.reads import read_once_more


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
    await require_permission(deps, asked, user_id=user_id, channel_id=channel_id, platform=config.platform)
    if config.platform is None:
        await _no_platform(deps, asked, channel_id=channel_id)
    await _not_while_running(deps, asked, channel_id=channel_id, platform=config.platform)
    platform = runtime(deps).platforms.get(name)
    try:
        deployments, current = await _look(platform, action, target_id, ops=runtime(deps), service=name)
    except BotError as exc:  # asked for and failed, like a failure after the click: audited, on the timeline
        await record_outcome(
            deps,
            asked,
            actor=user_id,
            channel_id=channel_id,
            platform=config.platform,
            outcome=Outcome.FAILED,
            detail=f"could not see what is live: {exc}",
            timeline_text=f"{action.verb} of {name} could not be prepared: {exc}",
        )
        raise
    common: dict[str, Any] = {
        "action": action,
        "service": name,
        "platform": platform.kind,
        "platform_name": platform.display_name,
        "current": current,
        "requested_by": user_id,
        "incident_id": incident_id,
    }
    if problem := platform.blocker(action.value, deployments, current):  # it would only fail after the click
        return await _not_offered(deps, Plan(**common, problem=problem, blocked=True), asked, channel_id=channel_id)
    if action is Action.RESTART:
        redeploys = platform.restart_deploys(deployments, current)
        return await _keep(deps, Plan(**common, redeploys=redeploys), channel_id=channel_id)
    others = [d for d in deployments if current is None or d.id != current.id]
    candidates = rollback_candidates(deployments, current) or others
    try:  # `rev7` is `7` on Kubernetes only
        target = pick_rollback_target(deployments, current, target_id, read=platform.canonical_id)
    except NotFound as exc:
        plan = Plan(**common, candidates=tuple(candidates[:8]), problem=str(exc))
        return await _not_offered(deps, plan, asked, channel_id=channel_id)
    rest = [d for d in candidates if d.id != target.id]
    return await _keep(deps, Plan(**common, target=target, candidates=tuple(rest[:5])), channel_id=channel_id)


async def _look(
    platform: Platform, action: Action, target_id: str | None, *, ops: OpsRuntime, service: str
) -> tuple[list[Deployment], Deployment | None]:
    """The deployments and the live one; only read, so a passing failure is asked once more."""

    async def read() -> tuple[list[Deployment], Deployment | None]:
        if action is Action.ROLLBACK:
            return await rollback_snapshot(platform, target_id, history=ops.history)
        return await platform.snapshot(limit=ops.history)

    return await read_once_more(read, timer=ops.timer, what=f"reading the deployments of {service}")


async def _not_while_running(deps: Deps, ref: PlanRef, *, channel_id: str | None, platform: str | None) -> None:
    """Refused (and audited) while another restart or rollback of the service is being followed:
    a second one now would restart it under the first, and nobody would know which one ended how."""
    async with deps.db.session() as session:
        other = await audit.running(session, service=ref.service)
    if other is None:
        return
    refusal = await busy_refusal(deps, ref.action, ref.service, other, person=ref.requested_by)
    await _refuse(deps, ref, refusal, channel_id=channel_id, platform=platform)


async def _no_platform(deps: Deps, ref: PlanRef, *, channel_id: str | None) -> NoReturn:
    """Refused (and audited, like any refusal) for a service bot.yml gives no deploy platform: at 3 a.m. the
    timeline must show it was tried, and the person must learn it has to be done by hand."""
    verb = ref.action.value.replace("rollback", "roll back")
    refusal = NotFound(
        f"{ref.service} has no deploy platform in bot.yml, so the bot cannot {verb} it: do it where the service "
        "runs, or add `platform:` and its section to the service in bot.yml"
    )
    await _refuse(deps, ref, refusal, channel_id=channel_id, platform=None)


async def _refuse(
    deps: Deps, ref: PlanRef, refusal: Exception, *, channel_id: str | None, platform: str | None
) -> NoReturn:
    """Audit the refusal (and put it on the incident's timeline), then raise it for the person to read."""
    await record_outcome(
        deps,
        ref,
        actor=ref.requested_by,
        channel_id=channel_id,
        platform=platform,
        outcome=Outcome.REFUSED,
        detail=str(refusal),
        timeline_text=f"{ref.action.verb} of {ref.service} not run: {refusal}",
    )
    raise refusal


async def _not_offered(deps: Deps, plan: Plan, asked: PlanRef, *, channel_id: str | None) -> Plan:
    """A plan with nothing to confirm (no target, or a restart that could only fail) is refused like any
    request: audited, and on the incident's timeline, with what was live and what was asked for."""
    ref = replace(asked, current_id=plan.current.id if plan.current else None)
    await record_outcome(
        deps,
        ref,
        actor=ref.requested_by,
        channel_id=channel_id,
        platform=plan.platform,
        outcome=Outcome.REFUSED,
        detail=plan.problem,
        timeline_text=f"{ref.action.verb} of {ref.service} not offered: {plan.problem}",
    )
    return plan


async def _keep(deps: Deps, plan: Plan, *, channel_id: str | None) -> Plan:
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
                target_id=ref.redeploys_id if ref.action is Action.RESTART else ref.target_id,
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
    restart = Action(found.action) is Action.RESTART
    ref = PlanRef(
        action=Action(found.action),
        service=found.service,
        current_id=found.current_id,
        target_id=None if restart else found.target_id,
        requested_by=found.requested_by,
        incident_id=found.incident_id,
        request_id=found.id,
        shown_at=found.created_at,
        redeploys_id=found.target_id if restart else None,
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
    if user_id != ref.requested_by and not await decide(deps, action=ref.action, user_id=user_id):
        raise PermissionDenied(
            f"only {PermissionDenied.PEOPLE} or people who may {ref.action.value} can cancel this",
            people=[ref.requested_by],
        )
    config = deps.settings.config.services.get(ref.service)
    await record_outcome(
        deps,
        ref,
        actor=user_id,
        channel_id=channel_id,
        platform=config.platform if config else None,
        outcome=Outcome.CANCELLED,
        claim=True,
        timeline_text=f"{ref.action.verb} of {ref.service} cancelled",
    )
