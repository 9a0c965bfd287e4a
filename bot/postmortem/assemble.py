"""The one pass over an incident's timeline that fills every section of the post-mortem.

Each event's `data` is parsed into its typed payload (bot.timeline.events) once, then handed to the
one small function registered for that payload type, which adds to the sections it feeds (pages,
actions, playbook steps...) and says whether the event changed the incident's state (key timeline).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import Row

from bot.clock import utc
from bot.incidents.models import Incident
from bot.postmortem import describe as lines
from bot.postmortem import text as fmt
from bot.postmortem.data import Action, Escalation, Event, Note, PlaybookStep, PostmortemData
from bot.postmortem.document import document
from bot.timeline import events as payloads
from bot.timeline import shown
from bot.timeline.models import Kind

log = logging.getLogger(__name__)

P = TypeVar("P", bound=payloads.Payload)
_Handler = Callable[["Timeline", Event, Any], bool]
_HANDLERS: dict[type[payloads.Payload], _Handler] = {}

# Kinds that change the incident's state: always on the key timeline.
_STATE_KINDS = {Kind.DECLARED, Kind.SEVERITY, Kind.ROLE, Kind.RESOLVED}
_NO_DATA = ("", "{}", "null")
_MESSAGE = payloads.MessagePosted()


@dataclass
class Timeline:
    """What the pass has gathered so far; the handlers below add to it."""

    incident: Incident
    declared_at: datetime
    events: list[Event] = field(default_factory=list)
    key_events: list[Event] = field(default_factory=list)
    escalations: list[Escalation] = field(default_factory=list)
    actions: list[Action] = field(default_factory=list)
    running: dict[tuple[str, str], int] = field(default_factory=dict)  # (action, service) → index still `started`
    steps: list[PlaybookStep] = field(default_factory=list)
    closed_steps: dict[tuple[int | None, str | None], int] = field(default_factory=dict)  # → its done/skipped row
    notes: list[Note] = field(default_factory=list)
    services: list[str] = field(default_factory=list)
    first_alert: Event | None = None
    alert_started: datetime | None = None  # the earliest `startsAt` the alert events carry
    first_ack: Event | None = None
    first_monitoring: Event | None = None
    relapse: Event | None = None  # the first step back from `monitoring` (the impact came back)
    last_relapse: Event | None = None
    last_monitoring: Event | None = None  # the latest step to `monitoring`, after a relapse or not
    severity_at_declaration: str | None = None
    severities: set[str] = field(default_factory=set)  # every severity it had, for the worst one
    pages: int = 0
    page_notes: int = 0  # levels whose only recipients were paged earlier and just told it escalated
    activity: dict[str, list[Any]] = field(default_factory=dict)  # actor -> [first seen, count]
    role_holders: list[tuple[str, str]] = field(default_factory=list)  # (role, user) in order of assignment
    paged: set[str] = field(default_factory=set)
    playbook_titles: dict[str, str] = field(default_factory=dict)
    impact_set: str | None = None  # who last corrected the impact start (`/incident started`)
    ended: datetime | None = None  # the resolve: who acts after it is not a responder

    def add(self, event: Event, payload: payloads.Payload | None) -> None:
        self.events.append(event)
        if event.actor and self.responding(event):
            seen = self.activity.get(event.actor)
            if seen is None:
                self.activity[event.actor] = [event.at, 1]
            else:
                seen[1] += 1
        handler = _HANDLERS.get(type(payload)) if payload is not None else None
        state_change = handler(self, event, payload) if handler is not None else event.kind in _STATE_KINDS
        if event.key or state_change:
            self.key_events.append(event)

    def responding(self, event: Event) -> bool:
        """Whether the event is part of the response, which makes its actor a responder: not the work on
        the post-mortem (a draft regenerated, a section written), nor anything after the resolve."""
        if event.kind == Kind.POSTMORTEM:
            return False
        return self.ended is None or event.at <= self.ended

    def add_service(self, service: str | None) -> None:
        if service and service not in self.services:
            self.services.append(service)


def assemble(
    incident: Incident, rows: Sequence[Sequence[Any]], items: Sequence[Row[Any]], *, generated_at: datetime
) -> PostmortemData:
    """`rows`: (id, at, kind, actor, text, key, permalink, data as JSON text or dict), oldest first."""
    timeline = Timeline(
        incident=incident,
        declared_at=utc(incident.declared_at),
        services=[incident.service] if incident.service else [],
        ended=utc(incident.resolved_at) if incident.resolved_at else None,
    )
    origin = timeline.declared_at.replace(microsecond=0)  # T+ counts between the times as shown
    for row in rows:
        timeline.add(*_event(row, origin))
    return document(timeline, items, generated_at=generated_at)


def _event(row: Sequence[Any], origin: datetime) -> tuple[Event, payloads.Payload | None]:
    ev_id, at, kind, actor, text, key, permalink, raw = row
    at = utc(at)
    text = text or ""
    if kind == Kind.MESSAGE:  # stored as Slack sent it; every other text is stored as typed
        text = fmt.slack_decoded(text)
    data = _json(raw)
    if kind == Kind.MESSAGE and not data:  # most of a long timeline: not worth a validation each
        payload: payloads.Payload | None = _MESSAGE
    else:
        payload = payloads.read_data(kind, data)
    event = Event(
        id=ev_id,
        at=at,
        offset=at.replace(microsecond=0) - origin,
        kind=kind,
        actor=actor,
        text=text,
        summary=shown.text(kind, text) if kind == Kind.MESSAGE else lines.summary(kind, text, payload),
        key=bool(key),
        permalink=permalink,
        data=data,
    )
    return event, payload


def _json(raw: Any) -> dict[str, Any]:
    """SQLite gives the text; psycopg decodes JSON itself."""
    value = (json.loads(raw) if raw not in _NO_DATA else {}) if isinstance(raw, str) else raw
    return value if isinstance(value, dict) else {}


def _handles(cls: type[P]) -> Callable[[Callable[[Timeline, Event, P], bool]], Callable[[Timeline, Event, P], bool]]:
    """Register the section-building function of one payload type; it returns "changed the state"."""

    def register(function: Callable[[Timeline, Event, P], bool]) -> Callable[[Timeline, Event, P], bool]:
        _HANDLERS[cls] = function
        return function

    return register


# --- one function per kind -----------------------------------------------------------------------


@_handles(payloads.Declared)
def _declared(t: Timeline, event: Event, p: payloads.Declared) -> bool:
    t.add_service(p.service)
    if t.severity_at_declaration is None:
        t.severity_at_declaration = p.severity
    t.severities.add(p.severity)
    return True


@_handles(payloads.StatusChanged)
def _status(t: Timeline, event: Event, p: payloads.StatusChanged) -> bool:
    if p.new == "monitoring":
        t.first_monitoring = t.first_monitoring or event
        if p.old != p.new:
            t.last_monitoring = event
    elif p.old == "monitoring" and t.first_monitoring is not None:
        t.relapse = t.relapse or event
        t.last_relapse = event
    return p.old != p.new


@_handles(payloads.SeverityChanged)
def _severity(t: Timeline, event: Event, p: payloads.SeverityChanged) -> bool:
    if t.severity_at_declaration is None:
        t.severity_at_declaration = p.old
    t.severities.update((p.old, p.new))
    return True


@_handles(payloads.RoleAssigned)
def _role(t: Timeline, event: Event, p: payloads.RoleAssigned) -> bool:
    if p.role:
        t.role_holders += [(p.role, holder) for holder in (p.previous, p.user) if holder]
    return True


@_handles(payloads.Acknowledged)
def _ack(t: Timeline, event: Event, p: payloads.Acknowledged) -> bool:
    if t.first_ack is None:
        t.first_ack = event
    whom = lines.present(p.for_whom)  # someone acknowledged a page that was not theirs
    text = "first acknowledgement" if p.first else "acknowledged again"
    t.escalations.append(
        Escalation(
            at=event.at,
            offset=event.offset,
            kind="ack",
            level="",
            who=[event.actor] if event.actor else [],
            late="",
            text=text + (", of the page to " + ", ".join(lines.mention(u) for u in whom) if whom else ""),
        )
    )
    return p.first


@_handles(payloads.PageEvent)
def _page(t: Timeline, event: Event, p: payloads.PageEvent) -> bool:
    sent = p.action == "sent"
    who = lines.paged(p) if sent else []
    via = lines.present(p.via) if sent else []  # "PagerDuty" took it
    anew = [user for user in who if user not in (p.noted or {})]
    if anew or via:  # a page that reached nobody is shown, not counted
        t.pages += 1
    elif who:  # it only told people paged at an earlier level that it escalated: not a page
        t.page_notes += 1
    t.paged.update(who)
    t.escalations.append(
        Escalation(
            at=event.at,
            offset=event.offset,
            kind="page" if sent else {"cancelled": "stopped", "replanned": "re-planned"}.get(p.action, p.action),
            level=lines.level(p),
            who=who,
            late=lines.late(p),
            text=_page_note(event.text, sent=sent, via=via, failed=lines.failed(p), noted=lines.noted(p)),
        )
    )
    return False


def _page_note(text: str, *, sent: bool, via: list[str], failed: list[str], noted: list[str]) -> str:
    """What the level and `who` do not say: another service that took the page, who it only told that it
    escalated (paged at an earlier level already), who it missed."""
    notes = [
        *(["via " + ", ".join(via)] if via else []),
        *noted,
        *(["could not reach " + ", ".join(failed)] if failed else []),
    ]
    if notes:
        return "; ".join(notes)
    return "" if sent and text.startswith("Paged level") else text


@_handles(payloads.Deployed)
def _deploy(t: Timeline, event: Event, p: payloads.Deployed) -> bool:
    t.add_service(p.service)
    action = Action(
        at=event.at,
        offset=event.offset,
        action=p.action or "deploy",
        service=p.service or t.incident.service or "—",
        outcome=p.result or "unknown",
        actor=event.actor,
        detail=event.text,
    )
    _add_action(t, action)
    return False


def _add_action(t: Timeline, action: Action) -> None:
    """A restart is one action: its `started` event and its outcome become one row (started when it
    started, with how it ended), not two."""
    key = (action.action, action.service)
    if action.outcome == "started":
        t.running[key] = len(t.actions)
        t.actions.append(action)
        return
    index = t.running.pop(key, None)
    if index is None:
        t.actions.append(action)
        return
    started = t.actions[index]
    t.actions[index] = Action(
        at=started.at,
        offset=started.offset,
        action=action.action,
        service=action.service,
        outcome=action.outcome,
        actor=started.actor or action.actor,
        detail=action.detail,
    )


@_handles(payloads.PlaybookChanged)
def _playbook(t: Timeline, event: Event, p: payloads.PlaybookChanged) -> bool:
    playbook_id = _playbook_id(t, p.playbook_id)
    if p.title:
        t.playbook_titles.setdefault(playbook_id, p.title)
    t.steps.append(
        PlaybookStep(
            at=event.at,
            offset=event.offset,
            playbook=t.playbook_titles.get(playbook_id, playbook_id),
            step="—",
            status=p.status or "started",
            actor=event.actor,
            detail=event.text,
        )
    )
    return False


@_handles(payloads.PlaybookStepChanged)
def _playbook_step(t: Timeline, event: Event, p: payloads.PlaybookStepChanged) -> bool:
    playbook_id = _playbook_id(t, p.playbook_id)
    key = (p.run_id, p.step_id)
    if p.status in ("done", "skipped"):
        t.closed_steps[key] = len(t.steps)
    elif p.status == "reopened" and key in t.closed_steps:
        # A Done or Skip undone: its row must not read as a step that was done.
        row = t.closed_steps.pop(key)
        t.steps[row] = replace(t.steps[row], status=f"{t.steps[row].status}, then reopened")
    t.steps.append(
        PlaybookStep(
            at=event.at,
            offset=event.offset,
            playbook=t.playbook_titles.get(playbook_id, playbook_id),
            step=p.step_title or p.step_id or "—",
            status=p.status or "recorded",
            actor=event.actor,
            detail=event.text or p.output or "",
        )
    )
    return False


def _playbook_id(t: Timeline, playbook_id: str | None) -> str:
    return playbook_id or t.incident.playbook_id or "—"


@_handles(payloads.NoteAdded)
def _note(t: Timeline, event: Event, p: payloads.NoteAdded) -> bool:
    t.notes.append(Note(at=event.at, actor=event.actor, text=event.text))
    return False


@_handles(payloads.AlertChanged)
def _alert(t: Timeline, event: Event, p: payloads.AlertChanged) -> bool:
    t.add_service(p.service)
    if t.first_alert is None:
        t.first_alert = event
    if p.impact_started_at is not None:
        started = utc(p.impact_started_at)
        t.alert_started = started if t.alert_started is None else min(t.alert_started, started)
    return False


@_handles(payloads.HealthChecked)
def _health(t: Timeline, event: Event, p: payloads.HealthChecked) -> bool:
    t.add_service(p.service)
    return False


@_handles(payloads.Impact)
def _impact(t: Timeline, event: Event, p: payloads.Impact) -> bool:
    t.impact_set = event.actor or "someone"
    return False


@_handles(payloads.Resolved)
def _resolved(t: Timeline, event: Event, p: payloads.Resolved) -> bool:
    return True
