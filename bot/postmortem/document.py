"""The post-mortem's figures from what the timeline pass gathered: key times, responders, the document."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Row

from bot.clock import elapsed, utc
from bot.config import Severity
from bot.incidents.models import Incident
from bot.postmortem import text as fmt
from bot.postmortem.data import ActionItemRow, Metric, PostmortemData, Responder

if TYPE_CHECKING:
    from bot.postmortem.assemble import Timeline


@dataclass(frozen=True)
class _Times:
    """When the impact started and ended, and the four key times after the declaration."""

    impact_start: datetime
    impact_from: str
    impact_set_by: str | None
    end: datetime | None
    duration: timedelta | None
    ongoing_for: timedelta | None
    detected: Metric
    declared: Metric
    acknowledged: Metric
    mitigated: Metric
    resolved: Metric
    acknowledged_by: str | None


def document(t: Timeline, items: Sequence[Row[Any]], *, generated_at: datetime) -> PostmortemData:
    incident = t.incident
    assert incident.id is not None
    times = _times(t, generated_at)
    # The detection section starts where the impact does when the impact start came from the alerts.
    alert_started = times.impact_start if times.impact_from == "first alert" else t.alert_started
    return PostmortemData(
        ref=incident.ref,
        number=incident.id,
        title=incident.title,
        status=str(incident.status),
        severity=str(incident.severity),
        severity_label=Severity(incident.severity).label,
        severity_at_declaration=str(t.severity_at_declaration or incident.severity),
        services=t.services,
        description=incident.description or "",
        playbook=incident.playbook_id,
        channel_id=incident.channel_id,
        channel_name=incident.channel_name,
        channel_url=f"https://slack.com/app_redirect?channel={incident.channel_id}" if incident.channel_id else None,
        generated_at=generated_at,
        declared_at=t.declared_at,
        declared_by=incident.declared_by,
        impact_start=times.impact_start,
        impact_from=times.impact_from,
        impact_set_by=times.impact_set_by,
        resolved_by=incident.resolved_by,
        resolution=incident.resolution or "",
        end=times.end,
        duration=times.duration,
        ongoing_for=times.ongoing_for,
        first_event=t.events[0] if t.events else None,
        first_alert=t.first_alert,
        detected=times.detected,
        declared=times.declared,
        acknowledged=times.acknowledged,
        mitigated=times.mitigated,
        resolved=times.resolved,
        commander=incident.commander,
        comms=incident.comms,
        scribe=incident.scribe,
        responders=_responders(t, times.acknowledged_by),
        escalations=t.escalations,
        pages=t.pages,
        page_notes=t.page_notes,
        key_events=t.key_events,
        events=t.events,
        actions=t.actions,
        playbook_steps=t.steps,
        notes=t.notes,
        action_items=[_item(item) for item in items],
        first_alert_started=alert_started,
        severity_peak=_peak({*t.severities, str(incident.severity)}),
        relapsed_at=t.relapse.at if t.relapse is not None else None,
    )


def _peak(severities: set[str]) -> str:
    """The most severe of them; a value that is not a severity (an old row) is left out."""
    known = [s for s in severities if s in Severity.__members__]
    return min(known) if known else ""


def _times(t: Timeline, generated_at: datetime) -> _Times:
    incident, declared_at = t.incident, t.declared_at
    first_ack, first_monitoring = t.first_ack, t.first_monitoring
    acknowledged_at = incident.acknowledged_at or (first_ack.at if first_ack else None)
    acknowledged_by = incident.acknowledged_by or (first_ack.actor if first_ack else None)
    mitigated_at = incident.mitigated_at or (first_monitoring.at if first_monitoring else None)
    # Who mitigated: whoever first set `monitoring`, or whoever resolved when that is what set the time.
    mitigated_by = first_monitoring.actor if first_monitoring else None
    mitigated_note = ""
    resolved_at = utc(incident.resolved_at) if incident.resolved_at else None
    if mitigated_at is not None and first_monitoring is None and utc(mitigated_at) == resolved_at:
        mitigated_note = "taken as the resolve time: there was no `monitoring` status update"
        mitigated_by = incident.resolved_by
    elif t.relapse is not None:
        mitigated_note = _relapse_note(t)

    def metric(name: str, at: datetime | None, missing: str, by: str | None = None, note: str = "") -> Metric:
        at = utc(at) if at is not None else None
        after = elapsed(declared_at, at) if at else None
        return Metric(name=name, at=at, after=after, missing=missing, by=by, note=note)

    impact_start, impact_from = _impact(incident, t.impact_set)
    set_by = t.impact_set if impact_from == "set by" else None
    return _Times(
        impact_start=impact_start,
        impact_from=impact_from,
        impact_set_by=set_by,
        end=resolved_at,
        duration=elapsed(impact_start, resolved_at) if resolved_at else None,
        ongoing_for=None if resolved_at else elapsed(impact_start, generated_at),
        detected=Metric(
            name="Impact started",
            at=impact_start,
            after=elapsed(impact_start, declared_at),
            missing="",
            by=set_by,
            note=impact_from,
        ),
        declared=metric("Declared", declared_at, "not declared", incident.declared_by),
        acknowledged=metric("First acknowledged", acknowledged_at, "not acknowledged", acknowledged_by),
        mitigated=metric("Mitigated", mitigated_at, "not mitigated", mitigated_by, mitigated_note),
        resolved=metric("Resolved", resolved_at, "not resolved yet", incident.resolved_by),
        acknowledged_by=acknowledged_by,
    )


def _relapse_note(t: Timeline) -> str:
    """The first mitigation did not hold (the status went back from `monitoring`): said beside the time
    to mitigate, with when `monitoring` came back for good, so that time is not read as the impact's end."""
    first, last, back = t.relapse, t.last_relapse, t.last_monitoring
    assert first is not None and last is not None
    note = f"it did not hold: back to {first.data.get('new') or 'investigating'} at {fmt.fmt_offset(first.offset)}"
    if back is not None and (back.at, back.id) > (last.at, last.id):
        note += f", `monitoring` again from {fmt.fmt_offset(back.offset)}"
    return note


def _impact(incident: Incident, impact_set: str | None) -> tuple[datetime, str]:
    """The impact start and where it came from, for the post-mortem's impact table."""
    if incident.impact_started_at is None:
        return utc(incident.declared_at), "declared"
    return utc(incident.impact_started_at), "set by" if impact_set is not None else "first alert"


def _item(item: Row[Any]) -> ActionItemRow:
    return ActionItemRow(
        id=item.id,
        text=item.text,
        owner=item.owner,
        done=bool(item.done),
        created_by=item.created_by,
        created_at=utc(item.created_at),
        issue_url=item.issue_url,
        issue_key=item.issue_key,
        issue_gone=item.issue_gone,
    )


def _responders(t: Timeline, acknowledged_by: str | None) -> list[Responder]:
    """People (Slack users, not bots or alert sources) who held a role or did something in the response
    (`Timeline.responding`), ordered by their first action."""
    incident, activity = t.incident, t.activity
    roles: dict[str, list[str]] = {}

    def give(user: str | None, role: str) -> None:
        if user and fmt.USER_ID.fullmatch(user) and role not in roles.setdefault(user, []):
            roles[user].append(role)

    current = {"commander": incident.commander, "comms": incident.comms, "scribe": incident.scribe}
    for role, user in current.items():
        give(user, role)
    for role, user in t.role_holders:
        if current.get(role) != user:
            give(user, f"{role} (handed over)")
    give(incident.declared_by, "declared")
    give(acknowledged_by, "acknowledged first")
    give(incident.resolved_by, "resolved")
    for actor in activity:
        if fmt.USER_ID.fullmatch(actor):
            roles.setdefault(actor, [])
    for user in sorted(t.paged):
        if user in roles:
            give(user, "paged")

    far = datetime.max.replace(tzinfo=utc(incident.declared_at).tzinfo)

    def first_seen(user: str) -> datetime | None:
        seen = activity.get(user)
        return seen[0] if seen else None

    ordered = sorted(roles, key=lambda u: (first_seen(u) or far, u))
    return [
        Responder(user=u, roles=roles[u], first_seen=first_seen(u), events=activity.get(u, [None, 0])[1])
        for u in ordered
    ]
