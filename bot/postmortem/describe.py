"""One line per timeline event, in Slack markup (the renderers turn it into plain text).

One small function per payload type; an event whose kind has none, or whose data does not fit its
type, is shown by its text under a label ("Health: 2 healthy").
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import timedelta
from typing import Any, TypeVar

from bot.postmortem import text as fmt
from bot.timeline import events
from bot.timeline.models import Kind

P = TypeVar("P", bound=events.Payload)
_Describe = Callable[[str, Any], str]
_DESCRIBERS: dict[type[events.Payload], _Describe] = {}

_LABELS: dict[str, str] = {
    Kind.REMINDER: "Reminder",
    Kind.HEALTH: "Health",
    Kind.ALERT: "Alert",
    Kind.POSTMORTEM: "Post-mortem",
    Kind.CHAT_ERROR: "Slack error",
    Kind.SETUP: "Setup",
    Kind.FOLLOWUP_STATUS: "",  # its text says it all: "Follow-up done: …"
    Kind.UNFINISHED_WORK: "",  # "The work after the resolve failed (…)"
}


def describe(kind: str, text: str, data: Mapping[str, Any] | None) -> str:
    """A one-line account of an event from its stored `data`."""
    if kind == Kind.MESSAGE:  # most of a long timeline: first, and as it is
        return text
    return summary(kind, text, events.read_data(kind, data))


def summary(kind: str, text: str, payload: events.Payload | None) -> str:
    """A one-line account of an event whose payload is parsed already (None: unknown or odd data)."""
    describer = _DESCRIBERS.get(type(payload)) if payload is not None else None
    if describer is not None:
        return describer(text, payload)
    label = _LABELS.get(kind, kind.replace("_", " ").capitalize())
    if not label or text.lower().startswith(label.lower()):
        return text  # "Health: 2 healthy" and "Post-mortem draft shared" say what they are already
    return f"{label}: {text}" if text else label


def _describes(cls: type[P]) -> Callable[[Callable[[str, P], str]], Callable[[str, P], str]]:
    def register(function: Callable[[str, P], str]) -> Callable[[str, P], str]:
        _DESCRIBERS[cls] = function
        return function

    return register


# --- helpers the post-mortem's sections share -------------------------------------------------


def mention(user: str) -> str:
    """Slack markup for a user, so the renderers show names consistently."""
    return user if user.startswith("<") else f"<@{user}>"


def present(values: Iterable[str] | None) -> list[str]:
    return [value for value in values or () if value]


def paged(page: events.PageEvent) -> list[str]:
    """Who a page reached."""
    return present(page.sent_to)


def failed(page: events.PageEvent) -> list[str]:
    """`{"U1": "user_not_found"}` → `["<@U1> (user_not_found)"]`."""
    return [f"{mention(user)} ({error})" for user, error in (page.failed or {}).items()]


def noted(page: events.PageEvent) -> list[str]:
    """Who a page did not page anew (paged at an earlier level, told it escalated): `["<@U1> already paged at
    level 1, told it escalated"]`."""
    return [
        f"{mention(user)} already paged at level {earlier}, told it escalated"
        for user, earlier in (page.noted or {}).items()
    ]


def level(page: events.PageEvent) -> str:
    """`1 (On-call engineer)`, or whichever of the two is known."""
    if page.level is not None and page.name:
        return f"{page.level} ({page.name})"
    return str(page.level if page.level is not None else page.name or "")


def late(page: events.PageEvent) -> str:
    if not page.late:
        return ""
    if page.late_seconds is not None and page.late_seconds > 0:
        return f"sent {fmt.fmt_duration(timedelta(seconds=page.late_seconds))} late"
    return "sent late"


# --- one function per kind -----------------------------------------------------------------------


@_describes(events.Declared)
def _declared(text: str, p: events.Declared) -> str:
    return f"Declared{f' as {p.severity}' if p.severity else ''}: {text}" if text else "Declared"


@_describes(events.StatusChanged)
def _status(text: str, p: events.StatusChanged) -> str:
    changed = p.old and p.new and p.old != p.new
    head = f"Status {p.old} → {p.new}" if changed else f"Status update ({p.new or 'unknown'})"
    return f"{head}: {text}" if text else head


@_describes(events.SeverityChanged)
def _severity(text: str, p: events.SeverityChanged) -> str:
    return f"Severity {p.old} → {p.new}" if p.old and p.new else f"Severity: {text}"


@_describes(events.RoleAssigned)
def _role(text: str, p: events.RoleAssigned) -> str:
    return f"{p.role.capitalize()}: {mention(p.user)}" if p.role and p.user else f"Role: {text}"


@_describes(events.Acknowledged)
def _ack(text: str, p: events.Acknowledged) -> str:
    head = "Acknowledged" if p.first else "Acknowledged again"
    whom = present(p.for_whom)
    return head + (" for " + ", ".join(mention(u) for u in whom) if whom else "")


@_describes(events.Resolved)
def _resolved(text: str, p: events.Resolved) -> str:
    return f"Resolved: {text}" if text else "Resolved"


@_describes(events.NoteAdded)
def _note(text: str, p: events.NoteAdded) -> str:
    return f"Note: {text}"


@_describes(events.ActionItemChanged)
def _action_item(text: str, p: events.ActionItemChanged) -> str:
    return f"Action item: {text}" + (f" (owner {mention(p.owner)})" if p.owner else "")


@_describes(events.PageEvent)
def _page(text: str, p: events.PageEvent) -> str:
    if p.action != "sent":
        return text or f"Escalation {p.action}"
    who = ", ".join(mention(u) for u in paged(p))
    where = ", ".join(str(part) for part in (p.level, p.name or None) if part is not None)
    head = "Paged" + (f" {who}" if who else " nobody") + (f" (level {where})" if where else "")
    if p.repeat:
        head += f", repeat {p.repeat}"
    if p.late:
        head += " — late"
    if p.noted:
        head += " — " + ", ".join(noted(p))
    missed = failed(p)
    if missed:
        head += " — could not reach " + ", ".join(missed)
    return head


@_describes(events.Deployed)
def _deploy(text: str, p: events.Deployed) -> str:
    head = f"{(p.action or 'deploy').capitalize()}{f' of {p.service}' if p.service else ''}"
    head += f": {p.result}" if p.result else ""
    return f"{head} — {text}" if text else head


@_describes(events.PlaybookChanged)
def _playbook(text: str, p: events.PlaybookChanged) -> str:
    name = p.title or p.playbook_id
    return text or (f"Playbook {name}" if name else "Playbook")


@_describes(events.PlaybookStepChanged)
def _playbook_step(text: str, p: events.PlaybookStepChanged) -> str:
    if text:
        return text
    step = p.step_title or p.step_id
    head = f"Step {step}" if step else "Playbook step"
    return f"{head}: {p.status}" if p.status else head
