"""A run's steps and their transitions: Done, Skip, Reopen, an action's result, and finishing the run.

Every change writes its timeline event (`playbook_step`, and `playbook` when the run completes)
in the same transaction. Completing or skipping a step is a conditional UPDATE (`... WHERE state
= 'pending'`), so when two people click the same button at once exactly one click is recorded
and the other is told who was first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BotConfig
from bot.exceptions import InvalidState, NotFound
from bot.incidents import service as incidents
from bot.incidents.models import Incident
from bot.playbooks.access import ensure_allowed
from bot.playbooks.models import PlaybookRun, StepState, StepStatus
from bot.playbooks.render import build_context, render_or_raw
from bot.playbooks.runs import get_run, playbook_of, step_of, step_states
from bot.playbooks.schema import Action, Playbook, Step
from bot.timeline import events
from bot.timeline import service as timeline

OUTPUT_LIMIT = 3000  # characters of action output kept (Slack section text limit)


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


def target_service(step: Step, incident: Incident) -> str | None:
    """The service a status/restart/rollback step acts on: the step's own, else the incident's."""
    return step.service or incident.service


def shown_title(step: Step, playbook: Playbook, incident: Incident, config: BotConfig | None) -> str:
    """The step's title as the checklist shows it (titles are templates too), for the timeline and replies."""
    context = build_context(incident=incident, playbook_id=playbook.id, playbook_title=playbook.title, config=config)
    return render_or_raw(step.title, context)


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
    config: BotConfig | None = None,
) -> StepChange:
    """Mark a pending step done or skipped; a step someone changed first is reported, not changed."""
    run, playbook = await _live_run(session, run_id)
    step = step_of(playbook, step_id)
    incident = await incidents.get(session, number=run.incident_id)
    ensure_allowed(playbook, incident, actor)
    title = shown_title(step, playbook, incident, config)
    result = await session.exec(
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
            step_title=title,
            state=state.state,
            by=state.by,
            at=state.at,
            recorded=False,
        )
    await _record_change(
        session, run=run, playbook=playbook, step=step, title=title, to=to, actor=actor, now=now, reason=reason
    )
    finished = await _finish_if_complete(session, run=run, playbook=playbook, actor=actor, now=now)
    await session.commit()
    return StepChange(
        run_id=run_id,
        step_id=step_id,
        step_title=title,
        state=to,
        by=actor,
        at=now,
        recorded=True,
        finished=finished,
    )


async def _record_change(
    session: AsyncSession,
    *,
    run: PlaybookRun,
    playbook: Playbook,
    step: Step,
    title: str,
    to: StepStatus,
    actor: str | None,
    now: datetime,
    reason: str,
) -> None:
    """The step's timeline line; skipping a required step says so, for the post-mortem."""
    number = playbook.steps.index(step) + 1
    verb = "Completed" if to == StepStatus.DONE else "Skipped"
    flag = " (a required step)" if to == StepStatus.SKIPPED and step.required else ""
    because = f": {reason}" if reason else ""
    await timeline.add(
        session,
        incident_id=run.incident_id,
        at=now,
        actor=actor,
        text=f"{verb} step {number}/{len(playbook.steps)} of {playbook.title}: {title}{flag}{because}",
        payload=events.PlaybookStepChanged(
            status=to.value,
            run_id=run.id,
            playbook_id=playbook.id,
            step_id=step.id,
            step_title=title,
            required=step.required,
            reason=reason,
        ),
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
    result = await session.exec(
        update(PlaybookRun)
        .where(col(PlaybookRun.id) == run.id, col(PlaybookRun.finished_at).is_(None))
        .values(finished_at=now, finished_reason="completed", finished_by=actor)
    )
    if result.rowcount != 1:
        return False
    done = sum(1 for s in states.values() if s.state == StepStatus.DONE)
    skipped = sum(1 for s in states.values() if s.state == StepStatus.SKIPPED)
    await timeline.add(
        session,
        incident_id=run.incident_id,
        at=now,
        actor=actor,
        text=f"Finished playbook {playbook.title}: {done} done, {skipped} skipped",
        payload=events.PlaybookChanged(
            status="completed",
            run_id=run.id,
            playbook_id=playbook.id,
            title=playbook.title,
            done=done,
            skipped=skipped,
        ),
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


async def reopen_step(
    session: AsyncSession,
    *,
    run_id: int,
    step_id: str,
    actor: str | None,
    now: datetime,
    config: BotConfig | None = None,
) -> StepChange:
    """Open a done or skipped step again (a misclick); a run it had completed is open again too.

    Conditional like Done and Skip: only the state read under the run's lock is changed, so a click that
    lost a race (the step is pending already) is reported, not recorded twice.
    """
    run, playbook = await _live_run(session, run_id)
    step = step_of(playbook, step_id)
    incident = await incidents.get(session, number=run.incident_id)
    ensure_allowed(playbook, incident, actor)
    title = shown_title(step, playbook, incident, config)
    before = await _state(session, run_id, step_id)
    was, was_by = before.state, before.by
    result = await session.exec(
        update(StepState)
        .where(
            col(StepState.run_id) == run_id,
            col(StepState.step_id) == step_id,
            col(StepState.state) == was,
            col(StepState.state) != StepStatus.PENDING,
        )
        .values(state=StepStatus.PENDING, by=None, at=None, reason="")
    )
    if result.rowcount != 1:
        await session.rollback()
        return StepChange(
            run_id=run_id, step_id=step_id, step_title=title, state=was, by=was_by, at=None, recorded=False
        )
    unfinished = step.required and run.finished_at is not None
    if unfinished:
        await session.exec(
            update(PlaybookRun)
            .where(col(PlaybookRun.id) == run_id)
            .values(finished_at=None, finished_reason=None, finished_by=None)
        )
    await _record_reopen(
        session,
        run=run,
        playbook=playbook,
        step=step,
        title=title,
        was=(was, was_by),
        unfinished=unfinished,
        actor=actor,
        now=now,
    )
    await session.commit()
    return StepChange(
        run_id=run_id, step_id=step_id, step_title=title, state=StepStatus.PENDING, by=actor, at=now, recorded=True
    )


async def _record_reopen(
    session: AsyncSession,
    *,
    run: PlaybookRun,
    playbook: Playbook,
    step: Step,
    title: str,
    was: tuple[StepStatus, str | None],
    unfinished: bool,
    actor: str | None,
    now: datetime,
) -> None:
    """The reopen's timeline line: who reopened which step, what it was and by whom (the post-mortem reads it)."""
    number = playbook.steps.index(step) + 1
    what = "done" if was[0] == StepStatus.DONE else "skipped"
    await timeline.add(
        session,
        incident_id=run.incident_id,
        at=now,
        actor=actor,
        text=f"Reopened step {number}/{len(playbook.steps)} of {playbook.title}: {title} (was {what} by {was[1]})"
        + ("; the playbook is no longer finished" if unfinished else ""),
        payload=events.PlaybookStepChanged(
            status="reopened",
            run_id=run.id,
            playbook_id=playbook.id,
            step_id=step.id,
            step_title=title,
            required=step.required,
        ),
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
    config: BotConfig | None = None,
) -> StepState:
    """Keep what an action did on the step and on the timeline (failures and "not available" too)."""
    run = await get_run(session, run_id=run_id)
    playbook = playbook_of(run)
    step = step_of(playbook, step_id)
    title = shown_title(step, playbook, await incidents.get(session, number=run.incident_id), config)
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
    await timeline.add(
        session,
        incident_id=run.incident_id,
        at=now,
        actor=actor,
        text=f"Action {action.value} of step '{title}' ({playbook.title}) {outcome}"
        + (f": {output}" if output else ""),
        payload=events.PlaybookStepChanged(
            status=f"{action.value} {outcome}",
            run_id=run_id,
            playbook_id=playbook.id,
            step_id=step_id,
            step_title=title,
            action=action.value,
            ok=ok,
            output=output,
        ),
    )
    await session.commit()
    return state


async def step_for_action(
    session: AsyncSession, *, run_id: int, step_id: str
) -> tuple[PlaybookRun, Playbook, Step, Incident]:
    """Everything a flow needs before running a step's action (and checking who may)."""
    run = await get_run(session, run_id=run_id)
    playbook = playbook_of(run)
    step = step_of(playbook, step_id)
    if step.action is None:
        raise InvalidState(f"Step '{step.title}' has no action to run.")
    incident = await incidents.get(session, number=run.incident_id)
    return run, playbook, step, incident
