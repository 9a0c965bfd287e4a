"""What a run's progress message shows: the checklist and the next step, rendered, free of Slack.

Read fresh from the database on every refresh; texts are rendered for the incident (and for the
service a step acts on), and a template that fails shows its raw text rather than hiding the step.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import BotConfig
from bot.incidents import service as incidents
from bot.incidents.models import Incident
from bot.playbooks.models import PlaybookRun, StepState, StepStatus
from bot.playbooks.render import build_context, render_or_raw
from bot.playbooks.runs import get_run, playbook_of, step_of, step_states
from bot.playbooks.schema import Action, Playbook, Step
from bot.playbooks.steps import target_service


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
    closed: bool = False  # the incident is resolved: its steps are no longer offered
    # The playbook is for private incidents (security breach) but this one is public: its channel stays
    # public (Slack offers bots no way to make it private), so the message must say so.
    public_warning: bool = False

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


@dataclass(frozen=True)
class CompactView:
    """The checklist cut short, for a chat that refuses the whole of it as too long: the steps done or
    skipped collapse to counts, the next step and the few pending after it stay, the rest is a count."""

    done: int
    skipped: int
    window: list[StepProgress]  # the next step first, then the pending steps after it
    later: int  # pending steps after the window
    recent: list[StepProgress]  # the last closed steps in the playbook, last first (to reopen one)


def compact_view(progress: Progress, *, ahead: int = 3, recent: int = 10) -> CompactView:
    """`ahead` pending steps after the next one are kept; `recent` closed steps stay reachable to reopen."""
    pending = [s for s in progress.steps if s.state == StepStatus.PENDING]
    start = next((i for i, s in enumerate(pending) if progress.next and s.id == progress.next.id), None)
    window = [] if start is None else pending[start : start + 1 + ahead]
    closed = [s for s in progress.steps if s.state != StepStatus.PENDING]
    return CompactView(
        done=progress.done,
        skipped=progress.skipped,
        window=window,
        later=len(pending) - len(window),
        recent=closed[::-1][:recent],
    )


@dataclass(frozen=True)
class _Untouched:
    """The state of a step with no row yet (a run just started): pending, nobody touched it."""

    state: StepStatus = StepStatus.PENDING
    by: str | None = None
    at: datetime | None = None
    reason: str = ""
    action_ok: bool | None = None
    action_output: str | None = None
    action_by: str | None = None
    action_at: datetime | None = None


_UNTOUCHED = _Untouched()


def _view(states: Sequence[StepState], playbook: Playbook) -> list[StepProgress]:
    by_id = {s.step_id: s for s in states}
    return [_step(number, step, by_id.get(step.id) or _UNTOUCHED) for number, step in enumerate(playbook.steps, 1)]


def _step(number: int, step: Step, state: StepState | _Untouched) -> StepProgress:
    return StepProgress(
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


async def progress(session: AsyncSession, *, run_id: int, config: BotConfig | None = None) -> Progress:
    """The checklist and the next step, rendered for this incident (read fresh from the database)."""
    run = await get_run(session, run_id=run_id)
    incident = await incidents.get(session, number=run.incident_id)
    return compose(run=run, incident=incident, states=await step_states(session, run_id=run_id), config=config)


def compose(
    *,
    run: PlaybookRun,
    incident: Incident,
    states: Sequence[StepState],
    config: BotConfig | None = None,
    playbook: Playbook | None = None,
) -> Progress:
    """The progress of `run` from rows already in hand (a run just started has no step to read back).

    `playbook`: the run's playbook when the caller holds it (it just started the run from it), else
    the run's snapshot is read back into one.
    """
    assert run.id is not None
    playbook = playbook or playbook_of(run)
    steps = _view(states, playbook)
    context: dict[str, Any] = build_context(
        incident=incident, playbook_id=playbook.id, playbook_title=playbook.title, config=config
    )
    pending = next((s for s in steps if s.state == StepStatus.PENDING), None)
    next_step: NextStep | None = None
    # A resolved incident's buttons would only be refused: its checklist stays, its next step goes.
    if pending is not None and run.current and incident.is_open:
        next_step = _next_step(pending, playbook, incident, context, config)
    required_pending = any(s.state == StepStatus.PENDING and s.required for s in steps)
    return Progress(
        run_id=run.id,
        incident_id=run.incident_id,
        playbook_id=playbook.id,
        title=playbook.title,
        description=render_or_raw(playbook.description, context) if playbook.description else "",
        private=playbook.private,
        restricted_note=_restricted_note(playbook, context),
        started_by=run.started_by,
        started_at=run.started_at,
        reason=run.reason,
        steps=[replace(s, title=render_or_raw(s.title, context)) for s in steps],
        next=next_step,
        current=bool(run.current),
        finished=not required_pending,
        progress_channel=run.progress_channel,
        progress_ts=run.progress_ts,
        closed=not incident.is_open,
        public_warning=playbook.private and not incident.private,
    )


def _next_step(
    pending: StepProgress,
    playbook: Playbook,
    incident: Incident,
    context: dict[str, Any],
    config: BotConfig | None,
) -> NextStep:
    """The first pending step, rendered for the service it acts on (which may not be the incident's)."""
    step = step_of(playbook, pending.id)
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
    return NextStep(
        id=step.id,
        number=pending.number,
        title=render_or_raw(step.title, step_context),
        instructions=render_or_raw(step.instructions, step_context),
        required=step.required,
        action=step.action,
        action_label=step.action.label if step.action else None,
        service=target,
    )


def _restricted_note(playbook: Playbook, context: dict[str, Any]) -> str | None:
    if playbook.restricted is None:
        return None
    if playbook.restricted.note:
        return render_or_raw(playbook.restricted.note, context)
    return "Restricted to the incident's " + ", ".join(r.value for r in playbook.restricted.roles)
