"""What Slack shows of an alert group (`AlertView`), and what an incident declared from it says."""

from __future__ import annotations

from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.payloads import summary_of
from bot.alerts.ports import AlertLine, AlertView, IncidentLink
from bot.config import Severity
from bot.incidents.models import Incident


def alert_line(instance: AlertInstance, common: dict[str, str]) -> AlertLine:
    own = {k: v for k, v in instance.labels.items() if common.get(k) != v}
    return AlertLine(
        fingerprint=instance.fingerprint,
        status=instance.status,
        name=instance.labels.get("alertname", "alert"),
        labels=own,
        summary=summary_of(instance.annotations),
        starts_at=instance.starts_at,
        generator_url=instance.generator_url,
    )


def incident_description(group: AlertGroup, alerts: list[AlertInstance], *, source_name: str) -> str:
    """What the declared incident says about where it came from (plain text; Slack escaping happens later)."""
    firing = [a for a in alerts if a.status == "firing"]
    lines = []
    description = group.common_annotations.get("description") or next(
        (a.annotations.get("description") for a in firing if a.annotations.get("description")), ""
    )
    if description and description != group.summary:
        lines.append(description)
    lines.append(f"From {source_name}: {len(firing)} alert(s) firing.")
    if group.common_labels:
        lines.append("Labels: " + ", ".join(f"{k}={v}" for k, v in sorted(group.common_labels.items())))
    runbook = group.common_annotations.get("runbook_url") or next(
        (a.annotations.get("runbook_url") for a in firing if a.annotations.get("runbook_url")), None
    )
    if runbook:
        lines.append(f"Runbook: {runbook}")
    source = next((a.generator_url for a in firing if a.generator_url), None)
    if source:
        lines.append(f"Source: {source}")
    return "\n".join(lines)[:3000]


def build_view(
    group: AlertGroup, alerts: list[AlertInstance], incident: Incident | None, *, source_name: str
) -> AlertView:
    assert group.id is not None
    link = None
    if incident is not None and incident.id is not None:
        link = IncidentLink(
            number=incident.id,
            ref=incident.ref,
            channel_id=incident.channel_id,
            status=str(incident.status),
            severity=str(incident.severity),
            how=group.declared_how,
            setup_error=incident.setup_error,
            private=incident.private,
        )
    description = group.common_annotations.get("description", "")
    return AlertView(
        group_id=group.id,
        source=group.source,
        source_name=source_name,
        status=group.status,
        title=group.title,
        summary=group.summary,
        description=description if description != group.summary else "",
        common_labels=dict(group.common_labels),
        group_key=group.group_key,
        notifications=group.notifications,
        truncated=group.truncated,
        first_seen_at=group.first_seen_at,
        last_seen_at=group.last_seen_at,
        external_url=group.external_url,
        proposed_severity=group.proposed_severity or Severity.P2.value,
        proposed_service=group.proposed_service,
        proposed_playbook=group.proposed_playbook,
        rule=group.rule,
        declaring=_declaring(group) and incident is None,
        alerts=[alert_line(a, group.common_labels) for a in alerts],
        incident=link,
        firing_total=group.firing_total,
    )


def _declaring(group: AlertGroup) -> bool:
    """A declaration is under way (claimed), or a rule's is to come: only while the group fires, as an
    alert that cleared before its sync could declare is not declared."""
    return group.declare_state == DeclareState.CLAIMED or (
        group.declare_state == DeclareState.WANTED and group.status == "firing"
    )
