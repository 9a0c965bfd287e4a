"""Playbooks in an incident: start on declare (or offer a picker), step through, run step actions.

Flows take `deps`; the database work is in `runs`, `steps` and `checklist`, Slack behind the `PlaybookChat` port,
and the progress message (one per incident, edited in place) in `progress_message`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deps import Deps
from bot.exceptions import BotError, ChatError, InvalidState, NotFound
from bot.incidents import access
from bot.incidents.models import Incident
from bot.playbooks import progress_message, runs, steps
from bot.playbooks.access import ensure_allowed, visible_incident
from bot.playbooks.checklist import Progress
from bot.playbooks.models import PlaybookRun, StepStatus
from bot.playbooks.registry import PlaybookRegistry
from bot.playbooks.render import build_context, outside_view, render_or_raw
from bot.playbooks.schema import Action, Playbook, Step
from bot.playbooks.steps import StepChange
from bot.signals import IncidentChannelReady, IncidentResolved

log = logging.getLogger(__name__)


def registry(deps: Deps) -> PlaybookRegistry:
    if deps.playbooks is None:
        raise RuntimeError("the playbooks are not loaded (bot.playbooks.setup has not run)")
    return deps.playbooks


# --- starting ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Started:
    progress: Progress
    switched_from: str | None
    already_running: bool = False


async def start_playbook(
    deps: Deps, *, incident_id: int, playbook_id: str, actor: str | None, reason: str = ""
) -> Started:
    """Start (or switch to) a playbook and show it. Asking again for the running one re-shows it."""
    playbook = registry(deps).get(playbook_id)
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None:
            raise NotFound(f"INC-{incident_id} does not exist")
        if not incident.is_open:
            raise InvalidState(f"{incident.ref} is resolved: playbooks are for open incidents.")
        previous = await runs.current_run(session, incident_id=incident_id)
        running = previous is not None and previous.playbook_id == playbook.id and previous.finished_at is None
        if not running:
            run = await runs.start(
                session,
                incident=incident,
                previous=previous,
                playbook=playbook,
                actor=actor,
                now=deps.clock.now(),
                reason=reason,
            )
    if running:
        assert previous is not None and previous.id is not None
        progress = await progress_message.refresh(deps, run_id=previous.id)
        return Started(progress=progress, switched_from=None, already_running=True)
    if previous is None:
        progress = await progress_message.show_new(deps, run=run, playbook=playbook, incident=incident)
    else:  # a switch may keep steps worked in an earlier run of this playbook: read them back
        progress = await progress_message.refresh(deps, run_id=run.id or 0)
    return Started(progress=progress, switched_from=previous.playbook_id if previous else None)


def _chosen(reg: PlaybookRegistry, incident: Incident) -> tuple[Playbook | None, str, str]:
    """The playbook the incident asked for or matches, why, and a note when it asked for one that is gone."""
    match = reg.explain(title=incident.title, service=incident.service)
    if not incident.playbook_id:
        return (match.playbook, match.reason, "") if match is not None else (None, "", "")
    chosen = reg.find(incident.playbook_id)
    if chosen is None:
        return None, "", f"There is no playbook `{incident.playbook_id}`."
    if match is not None and match.playbook.id == chosen.id:
        return chosen, match.reason, ""
    # Asked for on declare, or picked by an alert rule from the alert's labels.
    return chosen, f"playbook:{chosen.id} chosen when declaring", ""


async def on_channel_ready(deps: Deps, event: IncidentChannelReady) -> None:
    """Start the playbook the incident asked for or matches; otherwise offer a picker in its channel.

    One transaction reads the incident and starts the run: every declaration in a storm comes here.
    A run started already (delivered twice, or by hand) is found by the unique index on the current
    run, which refuses the new one, and only then read: the first delivery reads nothing more.
    """
    async with deps.db.session() as session:
        incident = await session.get(Incident, event.incident_id)
        if incident is None or not incident.is_open:
            return
        if not incident.channel_id:
            return  # the signal promises a channel; a row changed meanwhile is no place to post
        chosen, reason, note = _chosen(registry(deps), incident)
        run = await _first_run(deps, session, incident, chosen, actor=event.actor, reason=reason)
        current = None if run is not None else await runs.current_run(session, incident_id=event.incident_id)
    if current is not None:  # delivered twice, or started by hand already
        if current.progress_ts is None and current.id is not None:
            await progress_message.refresh(deps, run_id=current.id)  # Slack refused it last time: post it now
        return
    if chosen is None:
        await offer_picker(deps, incident=incident, note=note)
    elif run is not None:
        await progress_message.show_new(deps, run=run, playbook=chosen, incident=incident)


async def on_resolved(deps: Deps, event: IncidentResolved) -> None:
    """Redraw the progress message without its buttons: after the resolve every click is refused."""
    async with deps.db.session() as session:
        current = await runs.current_run(session, incident_id=event.incident_id)
    if current is not None and current.id is not None and current.progress_ts is not None:
        await progress_message.refresh_quietly(deps, current.id)


async def _first_run(
    deps: Deps, session: AsyncSession, incident: Incident, playbook: Playbook | None, *, actor: str | None, reason: str
) -> PlaybookRun | None:
    """The incident's first run, when a playbook was chosen; None when there is none, or when someone
    started one by hand at the same moment (that run shows itself)."""
    if playbook is None:
        return None
    try:
        return await runs.start(
            session,
            incident=incident,
            previous=None,
            playbook=playbook,
            actor=actor,
            now=deps.clock.now(),
            reason=reason,
        )
    except InvalidState:
        return None


async def offer_picker(deps: Deps, *, incident: Incident, note: str = "") -> None:
    port = deps.playbook_chat
    playbooks = registry(deps).all()
    if port is None or not incident.channel_id or not playbooks:
        return
    await port.post_picker(incident=incident, playbooks=playbooks, note=note)


async def pick(deps: Deps, *, incident_id: int, playbook_id: str, actor: str, picker_ts: str | None) -> Started:
    """Someone chose from the picker: the picker message becomes the progress message."""
    await access.find(deps, number=incident_id, person=actor)
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
        running = await runs.current_run(session, incident_id=incident_id)
    if incident is not None and not incident.is_open:
        # A picker left in the channel: claiming it would start a run that `start_playbook` refuses.
        raise InvalidState(f"{incident.ref} is resolved: playbooks are for open incidents.")
    if running is not None and running.playbook_id != playbook_id:
        raise InvalidState(
            f"The {running.playbook_title} playbook is running already; to change it type "
            f"`/incident playbook {playbook_id}`."
        )
    if running is None and picker_ts and incident is not None and incident.channel_id:
        # Claim the picker message first so the new run edits it instead of posting another one.
        started = await _start_on_message(deps, incident=incident, playbook_id=playbook_id, actor=actor, ts=picker_ts)
        if started is not None:
            return started
    return await start_playbook(
        deps, incident_id=incident_id, playbook_id=playbook_id, actor=actor, reason=f"picked by {actor}"
    )


async def _start_on_message(deps: Deps, *, incident: Incident, playbook_id: str, actor: str, ts: str) -> Started | None:
    playbook = registry(deps).get(playbook_id)
    assert incident.id is not None and incident.channel_id is not None
    async with deps.db.session() as session:
        run = await runs.start(
            session,
            incident=incident,
            previous=None,  # `pick` found none running; a run started meanwhile makes this fail
            playbook=playbook,
            actor=actor,
            now=deps.clock.now(),
            reason=f"picked by {actor}",
        )
        assert run.id is not None
        await runs.set_progress_message(session, run_id=run.id, channel=incident.channel_id, ts=ts)
    progress = await progress_message.refresh(deps, run_id=run.id)
    return Started(progress=progress, switched_from=None)


# --- steps ---------------------------------------------------------------------------------------


async def change_step(
    deps: Deps,
    *,
    run_id: int,
    step_id: str,
    to: StepStatus,
    actor: str,
    message: tuple[str, str] | None = None,
) -> StepChange:
    """Done, Skip, or Reopen (`to` pending) by a person who can see the incident, while it is open; `recorded`
    is False when someone else changed the step first."""
    incident = await visible_incident(deps, run_id=run_id, actor=actor, message=message)
    if not incident.is_open:
        raise InvalidState(f"{incident.ref} is resolved; its checklist is closed.")
    now, config = deps.clock.now(), deps.settings.config
    async with deps.db.session() as session:
        if to == StepStatus.PENDING:
            change = await steps.reopen_step(
                session, run_id=run_id, step_id=step_id, actor=actor, now=now, config=config
            )
        else:
            change = await steps.change_step(
                session, run_id=run_id, step_id=step_id, to=to, actor=actor, now=now, config=config
            )
    await progress_message.refresh_quietly(deps, run_id)
    return change


# --- actions -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpsOffer:
    """A step's restart or rollback: what the chat layer shows, through the ops domain, as `/restart` would.

    The playbook domain does not call ops (nor the chat) for it: the listener prepares the ops
    confirmation for the person who clicked, shows it, and records what it showed with `record_action`.
    """

    action: Action  # Action.RESTART or Action.ROLLBACK
    service: str
    incident_id: int


@dataclass(frozen=True)
class ActionResult:
    action: Action
    ok: bool
    output: str
    available: bool = True
    # Set for restart and rollback: not recorded yet, the listener records the offer's outcome.
    offer: OpsOffer | None = None


async def run_action(
    deps: Deps,
    *,
    run_id: int,
    step_id: str,
    actor: str,
    message: tuple[str, str] | None = None,
) -> ActionResult:
    """Run a step's action for `actor`; every outcome (also "not available") is recorded and shown.

    A restart or rollback is returned as an `offer` instead, recorded by the caller once shown.
    """
    await visible_incident(deps, run_id=run_id, actor=actor, message=message)
    async with deps.db.session() as session:
        run, playbook, step, incident = await steps.step_for_action(session, run_id=run_id, step_id=step_id)
        ensure_allowed(playbook, incident, actor)
    if not run.current:
        raise InvalidState("This playbook was replaced by another one; use the newest progress message.")
    if not incident.is_open:
        raise InvalidState(f"{incident.ref} is resolved.")
    assert step.action is not None
    target = steps.target_service(step, incident)
    failure: BotError | None = None
    try:
        if step.action == Action.STATUS:
            result = await _status(deps, target)
        elif step.action in (Action.RESTART, Action.ROLLBACK):
            result = _offer_ops(deps, step.action, target, incident)
        elif step.action == Action.PAGE:
            result = await _page(deps, incident, actor)
        else:
            result = await _notify(deps, playbook, step, incident)
    except BotError as exc:
        # A refusal (PermissionDenied) or a failure the user should read: recorded like any outcome,
        # then re-raised so the listener answers the clicker.
        failure = exc
        result = ActionResult(step.action, False, str(exc))
    if result.offer is None:
        await record_action(deps, run_id=run_id, step_id=step_id, actor=actor, result=result)
    if failure is not None:
        raise failure
    return result


async def record_action(deps: Deps, *, run_id: int, step_id: str, actor: str, result: ActionResult) -> None:
    """The outcome of a step's action, in the step's state and the timeline; the progress message shows it."""
    async with deps.db.session() as session:
        await steps.record_action_result(
            session,
            run_id=run_id,
            step_id=step_id,
            action=result.action,
            actor=actor,
            ok=result.ok,
            output=result.output,
            now=deps.clock.now(),
            config=deps.settings.config,
        )
    await progress_message.refresh_quietly(deps, run_id)


def _not_available(action: Action, why: str) -> ActionResult:
    return ActionResult(action=action, ok=False, output=f"not available: {why}", available=False)


async def _status(deps: Deps, target: str | None) -> ActionResult:
    try:
        from bot.health import checker
        from bot.health.classify import HealthState
    except ImportError:
        return _not_available(Action.STATUS, "health checks are not part of this bot; use `/status`")
    services = deps.settings.config.services
    if not services:
        return _not_available(Action.STATUS, "no services in bot.yml (add them under `services:`)")
    if target is not None and target not in services:
        known = ", ".join(sorted(services))
        return ActionResult(Action.STATUS, False, f"service {target!r} is not in bot.yml (services: {known})")
    names = [target] if target is not None else list(services)
    results = await checker.check_all(deps.http, services, only=names, clock=deps.clock)
    lines = [r.summary() for r in results]
    ok = all(r.state == HealthState.HEALTHY for r in results)
    return ActionResult(Action.STATUS, ok, "\n".join(lines))


def _offer_ops(deps: Deps, action: Action, target: str | None, incident: Incident) -> ActionResult:
    if target is None:  # answered to the clicker too: a button that seems to do nothing at 3 a.m. is clicked again
        known = ", ".join(sorted(deps.settings.config.services)) or "none in bot.yml"
        return _not_available(action, f"the incident names no service: type `/{action.value} <service>` ({known})")
    if deps.ops is None:
        return _not_available(action, f"{action.value} is not set up in this bot; type `/{action.value} {target}`")
    assert incident.id is not None
    offer = OpsOffer(action=action, service=target, incident_id=incident.id)
    return ActionResult(action, True, f"{action.value} of {target} offered for confirmation", offer=offer)


async def _page(deps: Deps, incident: Incident, actor: str) -> ActionResult:
    if deps.escalator is None:
        return _not_available(Action.PAGE, "escalation is not set up in this bot; page the team lead yourself")
    assert incident.id is not None
    outcome = await deps.escalator.escalate_now(incident.id, actor=actor)
    return ActionResult(Action.PAGE, True, outcome or "the next escalation level was paged")


async def _notify(deps: Deps, playbook: Playbook, step: Step, incident: Incident) -> ActionResult:
    assert step.notify is not None
    port = deps.playbook_chat
    if port is None:
        return _not_available(Action.NOTIFY, "the chat is not connected")
    channels = deps.settings.config.channels
    channel = step.notify.channel
    if channel in ("announcements", "alerts"):
        configured = getattr(channels, channel)
        if not configured:
            return _not_available(Action.NOTIFY, f"channels.{channel} is not set in bot.yml")
        channel = configured
    # Outside its channel a private incident has no title, service or people, whatever the template asks.
    shown = outside_view(incident) if incident.private and channel != incident.channel_id else incident
    context = build_context(
        incident=shown, playbook_id=playbook.id, playbook_title=playbook.title, config=deps.settings.config
    )
    text = render_or_raw(step.notify.text, context)
    try:
        where = await port.notify(channel=channel, text=text)
    except ChatError as exc:
        return ActionResult(Action.NOTIFY, False, f"could not post to {channel}: {exc.code or exc}")
    return ActionResult(Action.NOTIFY, True, f"posted to {where}: {text}")


# --- wiring --------------------------------------------------------------------------------------


def subscribe(deps: Deps) -> None:
    async def channel_ready(event: IncidentChannelReady) -> None:
        # At declare, or after Retry setup made the channel: a playbook already running is left alone.
        # Published from a task already, and the work must be done when this returns (see the signal).
        await on_channel_ready(deps, event)

    deps.bus.subscribe(IncidentChannelReady, channel_ready, does="start the playbook")

    async def resolved(event: IncidentResolved) -> None:
        await on_resolved(deps, event)

    deps.bus.subscribe(IncidentResolved, resolved, does="close the playbook's checklist")
