"""Playbook runs and their rows: reading them, starting (or switching) one, its progress message.

An incident has at most one current run; starting another closes it with a conditional UPDATE
and a timeline note, in the same transaction as the new run and its `playbook` event.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, insert, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import InvalidState, NotFound
from bot.incidents.models import INCIDENTS, Incident
from bot.playbooks.models import PlaybookRun, StepState, StepStatus
from bot.playbooks.schema import Playbook, Step
from bot.timeline import events
from bot.timeline import service as timeline

# Tables for the Core statements of a playbook's start: the hot path of every declaration.
_STEP_TABLE = StepState.metadata.tables["playbook_step_states"]
_RUNS = PlaybookRun.metadata.tables["playbook_runs"]
_INSERT_RUN = insert(_RUNS).returning(_RUNS.c.id)
_SET_PLAYBOOK = (
    update(INCIDENTS).where(INCIDENTS.c.id == bindparam("incident")).values(playbook_id=bindparam("playbook"))
)
_SET_PROGRESS = (
    update(_RUNS)
    .where(_RUNS.c.id == bindparam("run"))
    .values(progress_channel=bindparam("channel"), progress_ts=bindparam("ts"))
)

# --- reading -----------------------------------------------------------------------------------


def playbook_of(run: PlaybookRun) -> Playbook:
    """The playbook as it was when the run started."""
    return Playbook.model_validate(run.snapshot)


def step_of(playbook: Playbook, step_id: str) -> Step:
    """A step of the run's playbook, or NotFound naming the steps it has (a button may be stale)."""
    step = playbook.step(step_id)
    if step is None:
        ids = ", ".join(s.id for s in playbook.steps)
        raise NotFound(f"the {playbook.title} playbook has no step {step_id!r} (steps: {ids})")
    return step


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


# --- starting ----------------------------------------------------------------------------------


async def start(
    session: AsyncSession,
    *,
    incident: Incident,
    previous: PlaybookRun | None,
    playbook: Playbook,
    actor: str | None,
    now: datetime,
    reason: str = "",
) -> PlaybookRun:
    """Start `playbook` on the incident; `previous` (its `current_run`, read by the caller) is closed with a note.

    The new run inherits the old run's progress message, so the channel keeps a single one. A
    `previous` read stale cannot start a second current run: the close is a conditional UPDATE and
    a unique index refuses a second current run.
    """
    assert incident.id is not None
    incident_id = incident.id
    if previous is not None and previous.playbook_id == playbook.id and previous.finished_at is None:
        raise InvalidState(f"The {playbook.title} playbook is already running for INC-{incident_id}.")
    switched_from: str | None = None
    kept: dict[str, StepState] = {}
    if previous is not None:
        # Switching back to a playbook worked earlier keeps what was done there (a first run has none).
        kept = await _kept_states(session, incident_id=incident_id, playbook=playbook)
        await _close(session, previous=previous, playbook=playbook, actor=actor, now=now)
        switched_from = previous.playbook_id
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
    await _add_run(session, run, playbook, kept)
    await timeline.add(
        session,
        incident_id=incident_id,
        at=now,
        actor=actor,
        text=_started_text(playbook, reason, kept=len(kept)),
        payload=events.PlaybookChanged(
            status="started",
            run_id=run.id,
            playbook_id=playbook.id,
            title=playbook.title,
            reason=reason,
            switched_from=switched_from,
            steps=len(playbook.steps),
        ),
    )
    await session.commit()
    return run


def _started_text(playbook: Playbook, reason: str, *, kept: int) -> str:
    text = f"Started playbook {playbook.title}" + (f" ({reason})" if reason else "")
    return text + (f"; kept {kept} step{'s' * (kept != 1)} worked before the switch" if kept else "")


async def _close(
    session: AsyncSession, *, previous: PlaybookRun, playbook: Playbook, actor: str | None, now: datetime
) -> None:
    """Close the incident's current run for `playbook`; only one of two racing switches wins."""
    assert previous.id is not None
    closed = await session.exec(
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
    await timeline.add(
        session,
        incident_id=previous.incident_id,
        at=now,
        actor=actor,
        text=f"Switched playbook from {previous.playbook_title} to {playbook.title}",
        payload=events.PlaybookChanged(
            status="switched",
            run_id=previous.id,
            playbook_id=previous.playbook_id,
            title=previous.playbook_title,
            to=playbook.id,
        ),
    )


async def _kept_states(session: AsyncSession, *, incident_id: int, playbook: Playbook) -> dict[str, StepState]:
    """The steps done or skipped in the incident's last run of `playbook`, when it was switched away from.

    Switching to another playbook and back must not show finished steps as pending again. A run that
    was completed is not carried: asking for its playbook again means starting over.
    """
    query = (
        select(PlaybookRun)
        .where(PlaybookRun.incident_id == incident_id, PlaybookRun.playbook_id == playbook.id)
        .order_by(col(PlaybookRun.id).desc())
        .limit(1)
    )
    last = (await session.exec(query)).first()
    if last is None or last.id is None or last.finished_reason != "switched":
        return {}
    ids = {step.id for step in playbook.steps}  # the YAML may have changed since
    states = await step_states(session, run_id=last.id)
    return {s.step_id: s for s in states if s.state != StepStatus.PENDING and s.step_id in ids}


async def _add_run(
    session: AsyncSession, run: PlaybookRun, playbook: Playbook, kept: dict[str, StepState] | None = None
) -> None:
    """The run, its pending steps, and the incident's playbook; a unique index refuses a second current run.

    Core statements on the tables, each compiled once: every declaration in a storm starts a playbook,
    and the ORM's flush and per-row work was most of their cost. The run stays a value, not attached
    to the session.
    """
    try:
        run.id = (await session.exec(_INSERT_RUN, params=run.model_dump(exclude={"id"}))).scalar_one()
    except IntegrityError:
        await session.rollback()
        raise InvalidState(
            "Another playbook was started for this incident at the same moment; look at the channel."
        ) from None
    kept = kept or {}
    rows = [_step_row(run.id, position, step.id, kept.get(step.id)) for position, step in enumerate(playbook.steps)]
    if rows:  # one multi-row INSERT
        await session.exec(insert(_STEP_TABLE), params=rows)
    await session.exec(_SET_PLAYBOOK, params={"incident": run.incident_id, "playbook": playbook.id})


def _step_row(run_id: int, position: int, step_id: str, kept: StepState | None) -> dict[str, object]:
    """A new run's step: pending, or as it was left in the earlier run of the same playbook."""
    row: dict[str, object] = {"run_id": run_id, "step_id": step_id, "position": position}
    if kept is None:
        return row | {"state": StepStatus.PENDING, "by": None, "at": None, "reason": ""}
    return row | {"state": kept.state, "by": kept.by, "at": kept.at, "reason": kept.reason}


async def set_progress_message(session: AsyncSession, *, run_id: int, channel: str, ts: str) -> None:
    await session.exec(_SET_PROGRESS, params={"run": run_id, "channel": channel, "ts": ts})
    await session.commit()
