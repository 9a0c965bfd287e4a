"""Playbook runs in the database: start, switch, complete, skip, record action results, progress.

Every change writes its timeline event (kinds `playbook`, `playbook_step`) in the same
transaction. Completing or skipping a step is a conditional UPDATE (`... WHERE state =
'pending'`), so when two people click the same button at once exactly one click is recorded and
the other is told who was first.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BotConfig
from bot.exceptions import InvalidState, NotFound, PermissionDenied
from bot.incidents.models import Incident
from bot.playbooks.models import PlaybookRun, StepState, StepStatus
from bot.playbooks.render import build_context, render_or_raw
from bot.playbooks.schema import Action, Playbook, Step
from bot.timeline import service as timeline
from bot.timeline.models import Kind

OUTPUT_LIMIT = 3000  # characters of action output kept (Slack section text limit)


# --- results -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepChange:
    """What a Done/Skip click did. `recorded` is False when someone else changed the step first."""

    run_id: int
    step_id: str
    step_title: str
    state: StepStatus
    by: str | None
    at: datetime | None
    recorded: bool
    finished: bool = False  # this change completed the playbook


@dataclass(frozen=True)
class StepProgress:
    id: str
    number: int  # 1-based position
    title: str
    state: StepStatus
    required: bool
    action: Action | None
    by: str | None
    at: datetime | None
    reason: str
    action_ok: bool | None
    action_output: str | None
    action_by: str | None
    action_at: datetime | None

    @property
    def emoji(self) -> str:
        return self.state.emoji


@dataclass(frozen=True)
class NextStep:
    id: str
    number: int
    title: str
    instructions: str  # rendered Markdown
    required: bool
    action: Action | None
    action_label: str | None
    service: str | None  # the service a status/restart/rollback action targets


@dataclass(frozen=True)
class Progress:
    """Everything the chat layer needs to draw the progress message; no Slack in here."""

    run_id: int
    incident_id: int
    playbook_id: str
    title: str
    description: str
    private: bool
    restricted_note: str | None
    started_by: str | None
    started_at: datetime
    reason: str
    steps: list[StepProgress]
    next: NextStep | None
    current: bool  # False once another playbook replaced this run
    finished: bool  # no required step is pending
    progress_channel: str | None
    progress_ts: str | None

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def done(self) -> int:
        return sum(1 for s in self.steps if s.state == StepStatus.DONE)

    @property
    def skipped(self) -> int:
        return sum(1 for s in self.steps if s.state == StepStatus.SKIPPED)

    @property
    def pending(self) -> int:
        return sum(1 for s in self.steps if s.state == StepStatus.PENDING)

    def checklist(self) -> list[str]:
        """`✅ 1. Check health endpoints`; optional steps say so."""
        return [f"{s.emoji} {s.number}. {s.title}" + ("" if s.required else " (optional)") for s in self.steps]


# --- reading -----------------------------------------------------------------------------------


def playbook_of(run: PlaybookRun) -> Playbook:
    """The playbook as it was when the run started."""
    return Playbook.model_validate(run.snapshot)


async def get_run(session: AsyncSession, *, run_id: int) -> PlaybookRun:
    run = await session.get(PlaybookRun, run_id, populate_existing=True)
    if run is None:
        raise NotFound(f"playbook run {run_id} does not exist")
    return run


async def current_run(session: AsyncSession, *, incident_id: int) -> PlaybookRun | None:
    query = select(PlaybookRun).where(PlaybookRun.incident_id == incident_id, col(PlaybookRun.current).is_(True))
    return (await session.exec(query)).first()


async def runs(session: AsyncSession, *, incident_id: int) -> list[PlaybookRun]:
    """Every run of an incident, oldest first (the post-mortem shows switches too)."""
    query = (
        select(PlaybookRun)
        .where(PlaybookRun.incident_id == incident_id)
        .order_by(col(PlaybookRun.started_at), col(PlaybookRun.id))
    )
    return list((await session.exec(query)).all())


async def step_states(session: AsyncSession, *, run_id: int) -> list[StepState]:
    query = (
        select(StepState)
        .where(StepState.run_id == run_id)
        .order_by(col(StepState.position))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())


async def _incident(session: AsyncSession, incident_id: int) -> Incident:
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(f"INC-{incident_id} does not exist")
    return incident


def allowed_people(playbook: Playbook, incident: Incident) -> set[str] | None:
    """Who may work a restricted playbook: holders of its roles, else the declarer. None: anyone."""
    if playbook.restricted is None:
        return None
    holders = {incident.role(role) for role in playbook.restricted.roles} - {None}
    return {h for h in holders if h} or {incident.declared_by}


def ensure_allowed(playbook: Playbook, incident: Incident, actor: str | None) -> None:
    """Raise PermissionDenied for someone outside a restricted playbook's roles."""
    allowed = allowed_people(playbook, incident)
    if allowed is None or actor in allowed:
        return
    assert playbook.restricted is not None
    roles = ", ".join(r.value for r in playbook.restricted.roles)
    note = f" {playbook.restricted.note.strip()}" if playbook.restricted.note.strip() else ""
    raise PermissionDenied(
        f"Only the incident's {roles} can work the {playbook.title} playbook (now: {PermissionDenied.PEOPLE}).{note}",
        people=sorted(allowed),
    )


# --- starting ----------------------------------------------------------------------------------


async def start(
    session: AsyncSession,
    *,
    incident: Incident,
    playbook: Playbook,
    actor: str | None,
    now: datetime,
    reason: str = "",
) -> PlaybookRun:
    """Start `playbook` on the incident; a running other playbook is closed with a timeline note.

    The new run inherits the old run's progress message, so the channel keeps a single one.
    """
    assert incident.id is not None
    incident_id = incident.id
    previous = await current_run(session, incident_id=incident_id)
    if previous is not None and previous.playbook_id == playbook.id and previous.finished_at is None:
        raise InvalidState(f"The {playbook.title} playbook is already running for INC-{incident_id}.")
    switched_from: str | None = None
    if previous is not None:
        assert previous.id is not None
        closed = await session.exec(  # type: ignore[call-overload]
            update(PlaybookRun)
            .where(col(PlaybookRun.id) == previous.id, col(PlaybookRun.current).is_(True))
            .values(
                current=None,
                finished_at=previous.finished_at or now,
                finished_reason=previous.finished_reason or "switched",
                finished_by=previous.finished_by if previous.finished_at else actor,
            )
        )
        if closed.rowcount != 1:
            await session.rollback()
            raise InvalidState("Someone changed the playbook at the same moment; look at the channel, retry.")
        switched_from = previous.playbook_id
        timeline.add(
            session,
            incident_id=incident_id,
            kind=Kind.PLAYBOOK,
            at=now,
            actor=actor,
            text=f"Switched playbook from {previous.playbook_title} to {playbook.title}",
            data={
                "status": "switched",
                "run_id": previous.id,
                "playbook_id": previous.playbook_id,
                "title": previous.playbook_title,
                "to": playbook.id,
            },
        )
    run = PlaybookRun(
        incident_id=incident_id,
        playbook_id=playbook.id,
        playbook_title=playbook.title,
        snapshot=playbook.model_dump(mode="json"),
        current=True,
        started_by=actor,
        started_at=now,
        reason=reason,
        # The incident keeps one progress message: the new run takes over the old run's.
        progress_channel=previous.progress_channel if previous is not None else None,
        progress_ts=previous.progress_ts if previous is not None else None,
    )
    session.add(run)
    try:
        await session.flush()
    except IntegrityError:
        await session.rollback()
        raise InvalidState(
            "Another playbook was started for this incident at the same moment; look at the channel."
        ) from None
    assert run.id is not None
    for position, step in enumerate(playbook.steps):
        session.add(StepState(run_id=run.id, step_id=step.id, position=position))
    await session.exec(  # type: ignore[call-overload]
        update(Incident).where(col(Incident.id) == incident_id).values(playbook_id=playbook.id)
    )
    timeline.add(
        session,
        incident_id=incident_id,
        kind=Kind.PLAYBOOK,
        at=now,
        actor=actor,
        text=f"Started playbook {playbook.title}" + (f" ({reason})" if reason else ""),
        data={
            "status": "started",
            "run_id": run.id,
            "playbook_id": playbook.id,
            "title": playbook.title,
            "reason": reason,
            "switched_from": switched_from,
            "steps": len(playbook.steps),
        },
    )
    await session.commit()
    return run


async def set_progress_message(session: AsyncSession, *, run_id: int, channel: str, ts: str) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(PlaybookRun).where(col(PlaybookRun.id) == run_id).values(progress_channel=channel, progress_ts=ts)
    )
    await session.commit()


# --- steps -------------------------------------------------------------------------------------


async def _live_run(session: AsyncSession, run_id: int) -> tuple[PlaybookRun, Playbook]:
    # FOR UPDATE serialises step changes of one run on PostgreSQL (SQLite serialises writers anyway),
    # so "was that the last required step?" is answered on committed data.
    query = select(PlaybookRun).where(PlaybookRun.id == run_id).with_for_update()
    run = (await session.exec(query)).first()
    if run is None:
        raise NotFound(f"playbook run {run_id} does not exist")
    if not run.current:
        raise InvalidState(
            f"The {run.playbook_title} playbook was replaced by another one; use the newest progress message."
        )
    return run, playbook_of(run)


def _step(playbook: Playbook, step_id: str) -> Step:
    step = playbook.step(step_id)
    if step is None:
        ids = ", ".join(s.id for s in playbook.steps)
        raise NotFound(f"the {playbook.title} playbook has no step {step_id!r} (steps: {ids})")
    return step


async def _state(session: AsyncSession, run_id: int, step_id: str) -> StepState:
    query = (
        select(StepState)
        .where(StepState.run_id == run_id, StepState.step_id == step_id)
        .execution_options(populate_existing=True)
    )
    state = (await session.exec(query)).first()
    if state is None:
        raise NotFound(f"step {step_id!r} is not part of playbook run {run_id}")
    return state


async def change_step(
    session: AsyncSession,
    *,
    run_id: int,
    step_id: str,
    to: StepStatus,
    actor: str | None,
    now: datetime,
    reason: str = "",
) -> StepChange:
    run, playbook = await _live_run(session, run_id)
    step = _step(playbook, step_id)
    incident = await _incident(session, run.incident_id)
    ensure_allowed(playbook, incident, actor)
    result = await session.exec(  # type: ignore[call-overload]
        update(StepState)
        .where(
            col(StepState.run_id) == run_id,
            col(StepState.step_id) == step_id,
            col(StepState.state) == StepStatus.PENDING,
        )
        .values(state=to, by=actor, at=now, reason=reason)
    )
    if result.rowcount != 1:
        await session.rollback()
        state = await _state(session, run_id, step_id)
        return StepChange(
            run_id=run_id,
            step_id=step_id,
            step_title=step.title,
            state=state.state,
            by=state.by,
            at=state.at,
            recorded=False,
        )
    number = playbook.steps.index(step) + 1
    verb = "Completed" if to == StepStatus.DONE else "Skipped"
    flag = " (a required step)" if to == StepStatus.SKIPPED and step.required else ""
    because = f": {reason}" if reason else ""
    timeline.add(
        session,
        incident_id=run.incident_id,
        kind=Kind.PLAYBOOK_STEP,
        at=now,
        actor=actor,
        text=f"{verb} step {number}/{len(playbook.steps)} of {playbook.title}: {step.title}{flag}{because}",
        data={
            "status": to.value,
            "run_id": run_id,
            "playbook_id": playbook.id,
            "step_id": step_id,
            "step_title": step.title,
            "required": step.required,
            "reason": reason,
        },
    )
    finished = await _finish_if_complete(session, run=run, playbook=playbook, actor=actor, now=now)
    await session.commit()
    return StepChange(
        run_id=run_id,
        step_id=step_id,
        step_title=step.title,
        state=to,
        by=actor,
        at=now,
        recorded=True,
        finished=finished,
    )


async def _finish_if_complete(
    session: AsyncSession, *, run: PlaybookRun, playbook: Playbook, actor: str | None, now: datetime
) -> bool:
    """A run is complete when no required step is pending (optional ones may stay open)."""
    if run.finished_at is not None:
        return False
    assert run.id is not None
    required = [s.id for s in playbook.steps if s.required]
    states = {s.step_id: s for s in await step_states(session, run_id=run.id)}
    if any(states[sid].state == StepStatus.PENDING for sid in required if sid in states):
        return False
    result = await session.exec(  # type: ignore[call-overload]
        update(PlaybookRun)
        .where(col(PlaybookRun.id) == run.id, col(PlaybookRun.finished_at).is_(None))
        .values(finished_at=now, finished_reason="completed", finished_by=actor)
    )
    if result.rowcount != 1:
        return False
    done = sum(1 for s in states.values() if s.state == StepStatus.DONE)
    skipped = sum(1 for s in states.values() if s.state == StepStatus.SKIPPED)
    timeline.add(
        session,
        incident_id=run.incident_id,
        kind=Kind.PLAYBOOK,
        at=now,
        actor=actor,
        text=f"Finished playbook {playbook.title}: {done} done, {skipped} skipped",
        data={
            "status": "completed",
            "run_id": run.id,
            "playbook_id": playbook.id,
            "title": playbook.title,
            "done": done,
            "skipped": skipped,
        },
    )
    return True


async def complete_step(
    session: AsyncSession, *, run_id: int, step_id: str, actor: str | None, now: datetime
) -> StepChange:
    return await change_step(session, run_id=run_id, step_id=step_id, to=StepStatus.DONE, actor=actor, now=now)


async def skip_step(
    session: AsyncSession,
    *,
    run_id: int,
    step_id: str,
    actor: str | None,
    now: datetime,
    reason: str = "",
) -> StepChange:
    return await change_step(
        session, run_id=run_id, step_id=step_id, to=StepStatus.SKIPPED, actor=actor, now=now, reason=reason
    )


async def record_action_result(
    session: AsyncSession,
    *,
    run_id: int,
    step_id: str,
    action: Action | str,
    actor: str | None,
    ok: bool,
    output: str,
    now: datetime,
) -> StepState:
    """Keep what an action did on the step and on the timeline (failures and "not available" too)."""
    run = await get_run(session, run_id=run_id)
    playbook = playbook_of(run)
    step = _step(playbook, step_id)
    action = Action(action)
    output = output.strip()
    if len(output) > OUTPUT_LIMIT:
        output = output[: OUTPUT_LIMIT - 20].rstrip() + "\n… (truncated)"
    state = await _state(session, run_id, step_id)
    state.action = action.value
    state.action_by = actor
    state.action_at = now
    state.action_ok = ok
    state.action_output = output
    session.add(state)
    outcome = "succeeded" if ok else "failed"
    timeline.add(
        session,
        incident_id=run.incident_id,
        kind=Kind.PLAYBOOK_STEP,
        at=now,
        actor=actor,
        text=f"Action {action.value} of step '{step.title}' ({playbook.title}) {outcome}"
        + (f": {output}" if output else ""),
        data={
            "status": f"{action.value} {outcome}",
            "run_id": run_id,
            "playbook_id": playbook.id,
            "step_id": step_id,
            "step_title": step.title,
            "action": action.value,
            "ok": ok,
            "output": output,
        },
    )
    await session.commit()
    return state


# --- progress ----------------------------------------------------------------------------------


def target_service(step: Step, incident: Incident) -> str | None:
    """The service a status/restart/rollback step acts on: the step's own, else the incident's."""
    return step.service or incident.service


def _view(states: Sequence[StepState], playbook: Playbook) -> list[StepProgress]:
    by_id = {s.step_id: s for s in states}
    out = []
    for number, step in enumerate(playbook.steps, start=1):
        # A step without a row yet reads as a fresh (pending, untouched) one.
        state = by_id.get(step.id) or StepState(run_id=0, step_id=step.id, position=number - 1)
        out.append(
            StepProgress(
                id=step.id,
                number=number,
                title=step.title,
                state=state.state,
                required=step.required,
                action=step.action,
                by=state.by,
                at=state.at,
                reason=state.reason,
                action_ok=state.action_ok,
                action_output=state.action_output,
                action_by=state.action_by,
                action_at=state.action_at,
            )
        )
    return out


async def progress(session: AsyncSession, *, run_id: int, config: BotConfig | None = None) -> Progress:
    """The checklist and the next step, rendered for this incident (read fresh from the database)."""
    run = await get_run(session, run_id=run_id)
    playbook = playbook_of(run)
    incident = await _incident(session, run.incident_id)
    states = await step_states(session, run_id=run_id)
    steps = _view(states, playbook)
    context: dict[str, Any] = build_context(
        incident=incident, playbook_id=playbook.id, playbook_title=playbook.title, config=config
    )
    next_step: NextStep | None = None
    pending = next((s for s in steps if s.state == StepStatus.PENDING), None)
    if pending is not None and run.current:
        step = _step(playbook, pending.id)
        target = target_service(step, incident)
        step_context = (
            context
            if target == incident.service
            else build_context(
                incident=incident,
                playbook_id=playbook.id,
                playbook_title=playbook.title,
                service=target,
                config=config,
            )
        )
        next_step = NextStep(
            id=step.id,
            number=pending.number,
            title=render_or_raw(step.title, step_context),
            instructions=render_or_raw(step.instructions, step_context),
            required=step.required,
            action=step.action,
            action_label=step.action.label if step.action else None,
            service=target,
        )
    rendered_steps = [replace(s, title=render_or_raw(s.title, context)) for s in steps]
    note = None
    if playbook.restricted is not None:
        note = (
            render_or_raw(playbook.restricted.note, context)
            if playbook.restricted.note
            else ("Restricted to the incident's " + ", ".join(r.value for r in playbook.restricted.roles))
        )
    required_pending = any(s.state == StepStatus.PENDING and s.required for s in steps)
    return Progress(
        run_id=run_id,
        incident_id=run.incident_id,
        playbook_id=playbook.id,
        title=playbook.title,
        description=render_or_raw(playbook.description, context) if playbook.description else "",
        private=playbook.private,
        restricted_note=note,
        started_by=run.started_by,
        started_at=run.started_at,
        reason=run.reason,
        steps=rendered_steps,
        next=next_step,
        current=bool(run.current),
        finished=not required_pending,
        progress_channel=run.progress_channel,
        progress_ts=run.progress_ts,
    )


async def step_for_action(
    session: AsyncSession, *, run_id: int, step_id: str
) -> tuple[PlaybookRun, Playbook, Step, Incident]:
    """Everything a flow needs before running a step's action (and checking who may)."""
    run = await get_run(session, run_id=run_id)
    playbook = playbook_of(run)
    step = _step(playbook, step_id)
    if step.action is None:
        raise InvalidState(f"Step '{step.title}' has no action to run.")
    incident = await _incident(session, run.incident_id)
    return run, playbook, step, incident
