"""What one delivery says about its group: the group's state after it, and the line the incident's timeline
gets for it (`bot.alerts.service.ingest` stores both)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from bot.alerts.models import AlertInstance
from bot.alerts.payloads import Notification
from bot.alerts.sources.presets import NAMES
from bot.config import AlertSource

BUILT_IN_NAMES = {"alertmanager": "Alertmanager", "grafana": "Grafana"}


def source_name(source: str, *, sources: Mapping[str, AlertSource]) -> str:
    """What people see a source called, as this app's own `alerts.sources` say: read from each app's
    settings, never kept process-wide (two bots in one process, or a source renamed or removed since)."""
    configured = sources.get(source)
    if configured is None:
        return BUILT_IN_NAMES.get(source, source)
    return f"{NAMES[configured.preset]} ({source})" if configured.preset else source


@dataclass(frozen=True)
class GroupState:
    """The group after a delivery: what the delivery says, or with a partial one, what all its alerts say."""

    status: str
    firing: int
    resolved: int
    firing_total: int
    common_labels: dict[str, str]


def group_state(note: Notification, stored: Sequence[AlertInstance]) -> GroupState:
    """A partial delivery names one alert of the group: the group fires while any of its alerts does."""
    if not note.partial:
        firing = len(note.firing)
        return GroupState(note.status, firing, len(note.alerts) - firing, note.firing_total, note.common_labels)
    delivered = {a.fingerprint for a in note.alerts}
    cleared = set(note.clears) if note.status == "resolved" else set()
    every = [(a.status, a.labels) for a in note.alerts] + [
        ("resolved" if i.fingerprint in cleared else i.status, i.labels)
        for i in stored
        if i.fingerprint not in delivered
    ]
    firing = sum(1 for status, _ in every if status == "firing")
    common = set(note.common_labels.items())
    for _, labels in every:
        common &= set(labels.items())
    status = "firing" if firing else "resolved"
    return GroupState(status, firing, len(every) - firing, firing, dict(sorted(common)))


def describe_change(
    note: Notification,
    state: GroupState,
    *,
    source_name: str,
    new_firing: Sequence[str],
    newly_resolved: Sequence[str],
) -> str:
    firing, resolved = state.firing, state.resolved
    head = f"{source_name}: {note.alertname or 'alert'} {state.status}"
    counts = f"{firing} firing" + (f", {resolved} resolved" if resolved else "")
    changes = []
    if new_firing:
        changes.append(f"{len(new_firing)} new")
    if newly_resolved:
        changes.append(f"{len(newly_resolved)} cleared")
    detail = f" ({counts}{'; ' + ', '.join(changes) if changes else ''})"
    summary = f": {note.summary}" if note.summary else ""
    return (head + detail + summary)[:2000]
