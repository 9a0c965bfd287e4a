"""The five preset senders' bodies, read into `Fields` (shapes in README, "Alert sources")."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.alerts.payloads import PayloadError
from bot.alerts.sources.fields import Fields, Ignored, tag_labels, text, when

Reader = Callable[[dict[str, Any], Mapping[str, str]], Fields | Ignored]

# Datadog's title starts with the transition (`[Triggered]`, `[Recovered on {host:h1}]`), after the
# monitor's priority when it has one (`[P1] [Triggered] …`).
_BRACKET = re.compile(r"^\s*(?:\[P[1-5]\]\s*)?\[[^\]]*\]\s*")
# A multi-alert monitor (`... by {host}`) names the group that changed in that bracket: `on {host:web-1}`.
_TITLE_SCOPE = re.compile(r"^\s*(?:\[P[1-5]\]\s*)?\[[^\]{]*\bon\s*\{([^}]*)\}\s*\]")


def _object(value: Any, *, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object" if value is not None else f"{where} is missing")
    return value


def uptimerobot(data: dict[str, Any], _: Mapping[str, str]) -> Fields | Ignored:
    """The alert contact's POST body: `*monitorID*`, `*alertType*` (1 down, 2 up, 3 SSL expiry) and friends."""
    kind = text(data.get("alertType"), where="alertType", required=True)
    if kind not in ("1", "2", "3"):
        raise PayloadError(f"alertType: expected 1 (down), 2 (up) or 3 (SSL expiry), got {kind!r}")
    name = text(data.get("monitorFriendlyName"), where="monitorFriendlyName") or text(
        data.get("monitorURL"), where="monitorURL"
    )
    details = text(data.get("alertDetails"), where="alertDetails")
    labels = {"monitor_url": text(data.get("monitorURL"), where="monitorURL")}
    if kind == "3":
        labels["alert"] = "ssl_expiry"
    monitor = text(data.get("monitorID"), where="monitorID", required=True)
    # `*alertDateTime*` is when the alert happened: the monitor went down, or came back up. An up's lets a
    # retried up of the last outage be told from the next (`ordering`); a webhook set up without the variable
    # has its up timed by the bot's clock, and not guarded.
    at = when(data.get("alertDateTime"), where="alertDateTime")
    return Fields(
        # An SSL expiry notice is never cleared: in the monitor's own group it would keep that group firing.
        key=f"{monitor}:ssl" if kind == "3" else monitor,
        firing=kind != "2",
        title=f"{name} is down" if kind == "1" else f"{name} is up" if kind == "2" else f"{name}: SSL certificate",
        summary=details,
        severity="warning" if kind == "3" else None,
        labels={k: v for k, v in labels.items() if v},
        started_at=at if kind != "2" else None,
        ended_at=at if kind == "2" else None,
        link=labels["monitor_url"] or None,
        starts_per_repeat=True,  # `alertDateTime` is each notification's, a reminder's included
    )


_DATADOG_RESOLVED = {"recovered"}
_DATADOG_FIRING = {"triggered", "re-triggered", "warn", "re-warn", "no data", "re-no data", "renotify", "alert"}


def datadog(data: dict[str, Any], _: Mapping[str, str]) -> Fields | Ignored:
    """The webhook integration's payload with `$ALERT_TRANSITION`, `$AGGREG_KEY`, `$ALERT_PRIORITY`, `$TAGS`...

    The monitor is the group; each group of a multi-alert monitor (`$ALERT_SCOPE`) is an alert of its own
    in it, so one host recovering clears that host only and the monitor resolves with its last one."""
    transition = text(data.get("alert_transition"), where="alert_transition", required="alert_transition" not in data)
    lowered = transition.lower()
    recovered = lowered in _DATADOG_RESOLVED
    if lowered in ("", "null"):  # Datadog lists `Null` among the values: it says neither firing nor recovered
        return Ignored(f"Datadog alert_transition {transition or '(empty)'}: neither firing nor recovered")
    if lowered not in _DATADOG_RESOLVED | _DATADOG_FIRING:
        raise PayloadError(f"alert_transition: {transition!r} is not Triggered, Warn, No Data or Recovered")
    # `$ALERT_ID` is the monitor's id (Datadog's docs), the same on its Triggered and its Recovered; `$AGGREG_KEY`
    # is documented only as "events belonging together", so it is the key only when there is no monitor id.
    monitor = text(data.get("alert_id"), where="alert_id")
    aggreg = text(data.get("aggreg_key"), where="aggreg_key")
    raw_title = (
        text(data.get("title"), where="title")
        or text(data.get("event_title"), where="event_title")
        or text(data.get("alert_title"), where="alert_title")
    )
    priority = text(data.get("alert_priority"), where="alert_priority") or text(data.get("priority"), where="priority")
    if priority.upper() == "P5":
        priority = "P4"
    if not re.fullmatch(r"[Pp][1-4]", priority):
        priority = "warning" if "warn" in lowered else ""
    labels = tag_labels(data.get("tags"), where="tags")
    if monitor:
        labels["monitor_id"] = monitor
    scope = _datadog_scope(data, title=raw_title)
    for name, value in tag_labels(scope, where="alert_scope").items():
        labels.setdefault(name, value)
    return Fields(
        key=monitor or aggreg,
        former_key=aggreg if monitor and aggreg and aggreg != monitor else "",
        alert=scope,
        firing=not recovered,
        title=_BRACKET.sub("", raw_title) or "Datadog monitor",
        summary=_datadog_text(text(data.get("body"), where="body")),
        severity=priority or None,
        service=labels.get("service"),
        labels=labels,
        started_at=None if recovered else when(data.get("date"), where="date"),
        # `$DATE` is when the notification's event happened: a Recovered says when the monitor recovered, so a
        # retried recovery of the last trigger can be told from the next one (`ordering`).
        ended_at=when(data.get("date"), where="date") if recovered else None,
        link=text(data.get("link"), where="link") or None,
        # A Re-Triggered or Renotify says when it was sent: the monitor's alert began earlier. A Triggered is
        # a new one (its Recovered may be a retry still on its way), so it starts when it says.
        starts_per_repeat=lowered.startswith("re-") or lowered == "renotify",
    )


def _datadog_scope(data: dict[str, Any], *, title: str) -> str:
    """The group of a multi-alert monitor this delivery is about (`host:web-1`), '' for a simple monitor.

    `$ALERT_SCOPE` when the payload carries it, else the group Datadog puts in the title
    (`[Triggered on {host:web-1}]`); either way `a:1,b:2`, so both spellings name the same alert."""
    scope = text(data.get("alert_scope"), where="alert_scope")
    if not scope:
        found = _TITLE_SCOPE.match(title)
        scope = found.group(1) if found else ""
    tags = sorted({tag.strip() for tag in scope.split(",") if tag.strip() and tag.strip() != "*"})
    return ",".join(tags)[:500]


def _datadog_text(body: str) -> str:
    """`$EVENT_MSG` wraps Markdown in `%%%` fences and trails a link footer: keep the message itself."""
    lines = [line.strip() for line in body.replace("%%%", "\n").splitlines()]
    kept = [line for line in lines if line and not line.startswith("[![") and not line.startswith("@webhook-")]
    return " ".join(kept)[:1000]


def sentry(data: dict[str, Any], headers: Mapping[str, str]) -> Fields | Ignored:
    """Issue alerts (`event_alert`), metric alerts, and issue resolved/unresolved (`issue`)."""
    resource = headers.get("Sentry-Hook-Resource", "event_alert").strip().lower()
    action = text(data.get("action"), where="action").lower()
    body = _object(data.get("data"), where="data")
    if resource == "event_alert":
        return _in_installation(data, _sentry_event_alert(body))
    if resource == "issue":
        return _in_installation(data, _sentry_issue(body, action=action))
    if resource == "metric_alert":
        return _in_installation(data, _sentry_metric_alert(body, action=action))
    return Ignored(f"Sentry {resource} hook: not an alert")


def _in_installation(data: dict[str, Any], fields: Fields | Ignored) -> Fields | Ignored:
    """The issue (or rule) within the installation that sent it (`installation.uuid`, in every integration
    webhook): self-hosted Sentry numbers its issues from 1, so two installations' ids meet. The id alone,
    the key before installations were told apart, is the former key: a group stored under it that is still
    open takes the delivery, so its resolve reaches it."""
    installation = data.get("installation")
    uuid = text(installation.get("uuid"), where="installation.uuid") if isinstance(installation, dict) else ""
    if isinstance(fields, Ignored) or not uuid:
        return fields
    return replace(fields, key=f"installation:{uuid[:64]}:{fields.key}", former_key=fields.key)


def _sentry_event_alert(body: dict[str, Any]) -> Fields:
    event = _object(body.get("event"), where="data.event")
    labels = tag_labels(event.get("tags"), where="data.event.tags")
    rule = text(body.get("triggered_rule"), where="data.triggered_rule")
    if rule:
        labels["rule"] = rule[:200]
    return Fields(
        key=text(event.get("issue_id"), where="data.event.issue_id", required=True),
        firing=True,
        title=text(event.get("title"), where="data.event.title") or "Sentry issue",
        summary=text(event.get("culprit"), where="data.event.culprit"),
        severity=text(event.get("level"), where="data.event.level") or None,
        service=labels.get("service"),
        labels=labels,
        started_at=when(event.get("datetime") or event.get("timestamp"), where="data.event.datetime"),
        link=text(event.get("web_url") or event.get("url"), where="data.event.web_url") or None,
        starts_per_repeat=True,  # the event that triggered the rule this time
    )


# Sentry's issue hook says `archived` (older versions `ignored`) when someone archives the issue: Sentry stops
# alerting on it, so the alert stops firing too; it fires again with `unresolved` (escalating) if it comes back.
_SENTRY_ARCHIVED = ("archived", "ignored")


def _sentry_issue(body: dict[str, Any], *, action: str) -> Fields | Ignored:
    if action not in ("created", "resolved", "unresolved", *_SENTRY_ARCHIVED):
        return Ignored(f"Sentry issue {action or 'change'}: nothing to alert on")
    issue = _object(body.get("issue"), where="data.issue")
    fire = ("created", "unresolved")
    summary = text(issue.get("culprit"), where="data.issue.culprit")
    labels: dict[str, str] = {}
    if action in _SENTRY_ARCHIVED:
        substatus = issue.get("substatus")  # `archived_until_escalating`, `archived_forever`...
        until = substatus.replace("_", " ").strip() if isinstance(substatus, str) else ""
        note = f"Archived in Sentry ({until})" if until else "Archived in Sentry"
        summary = f"{note}: no longer alerting. {summary}".strip()
        labels["sentry_status"] = "archived"
    return Fields(
        key=text(issue.get("id"), where="data.issue.id", required=True),
        firing=action in fire,
        title=text(issue.get("title"), where="data.issue.title") or "Sentry issue",
        summary=summary,
        severity=text(issue.get("level"), where="data.issue.level") or None,
        labels=labels,
        started_at=_sentry_issue_start(issue, action=action),
        ended_at=_sentry_issue_end(issue) if action not in fire else None,
        link=text(issue.get("web_url") or issue.get("permalink"), where="data.issue.web_url") or None,
    )


def _sentry_issue_end(issue: dict[str, Any]) -> datetime | None:
    """A resolve (or archive) names no time of its own, and `Sentry-Hook-Timestamp` is when the request was
    sent (a retry's is new; it is not signed). The issue's `lastSeen`, signed with the body, is its last event
    before the resolve: a retried or replayed resolve of an earlier state of the issue was last seen before
    the event that made it fire again, so it cannot clear that firing (`ordering`). A second more, as
    `lastSeen` is in milliseconds and the event alert's time in microseconds: the resolve of the one event
    that fired must not look older than that event."""
    last = when(issue.get("lastSeen"), where="data.issue.lastSeen")
    return last + timedelta(seconds=1) if last is not None else None


def _sentry_issue_start(issue: dict[str, Any], *, action: str) -> datetime | None:
    """A new issue began when first seen; a regressed one (`unresolved`) when seen again, not weeks ago."""
    if action == "created":
        return when(issue.get("firstSeen"), where="data.issue.firstSeen")
    if action == "unresolved":
        return when(issue.get("lastSeen"), where="data.issue.lastSeen")
    return None


def _sentry_metric_key(alert: dict[str, Any]) -> str:
    """`metric_alert` is Sentry's incident, a new one (new id) each time the rule fires; the rule is what
    stays the same, as a check does for the other senders."""
    rule = alert.get("alert_rule")
    rule_id = text(rule.get("id"), where="data.metric_alert.alert_rule.id") if isinstance(rule, dict) else ""
    if rule_id:
        return f"metric_rule:{rule_id}"
    return "metric:" + text(alert.get("id"), where="data.metric_alert.id", required=True)


def _sentry_metric_alert(body: dict[str, Any], *, action: str) -> Fields:
    alert = _object(body.get("metric_alert"), where="data.metric_alert")
    return Fields(
        key=_sentry_metric_key(alert),
        firing=action != "resolved",
        title=text(body.get("description_title"), where="data.description_title") or "Sentry metric alert",
        summary=text(body.get("description_text"), where="data.description_text"),
        severity="critical" if action == "critical" else "warning" if action == "warning" else None,
        started_at=when(alert.get("date_started"), where="data.metric_alert.date_started"),
        # When Sentry says its incident closed (its own example leaves it null: then the bot's clock).
        ended_at=when(alert.get("date_closed"), where="data.metric_alert.date_closed")
        if action == "resolved"
        else None,
        link=text(body.get("web_url"), where="data.web_url") or None,
    )


def pingdom(data: dict[str, Any], _: Mapping[str, str]) -> Fields | Ignored:
    """`check_id`, `check_name`, `current_state` DOWN/UP (transaction checks: FAILING/SUCCESS)..."""
    state = text(data.get("current_state"), where="current_state", required=True).upper()
    if state not in ("DOWN", "UP", "FAILING", "SUCCESS"):
        raise PayloadError(f"current_state: expected DOWN or UP, got {state!r}")
    firing = state in ("DOWN", "FAILING")
    changed = when(data.get("state_changed_timestamp"), where="state_changed_timestamp")
    raw_params = data.get("check_params")
    params: dict[str, Any] = raw_params if isinstance(raw_params, dict) else {}
    name = text(data.get("check_name"), where="check_name") or "Pingdom check"
    importance = text(data.get("importance_level"), where="importance_level").upper()
    labels = {"check_type": text(data.get("check_type"), where="check_type")}
    link = text(params.get("full_url"), where="check_params.full_url") or None
    return Fields(
        key=text(data.get("check_id"), where="check_id", required=True),
        firing=firing,
        title=f"{name} is {'down' if firing else 'up'}",
        summary=text(data.get("long_description"), where="long_description")
        or text(data.get("description"), where="description"),
        severity={"HIGH": "critical", "LOW": "warning"}.get(importance),
        labels={k: v for k, v in labels.items() if v},
        started_at=changed if firing else None,
        ended_at=None if firing else changed,
        link=link,
    )


def betterstack(data: dict[str, Any], _: Mapping[str, str]) -> Fields | Ignored:
    """Better Stack Uptime: `{"event": "started|acknowledged|resolved", "data": {"id", "type": "incident", ...}}`."""
    body = _object(data.get("data"), where="data")
    kind = text(body.get("type"), where="data.type")
    if kind and kind != "incident":
        return Ignored(f"Better Stack {kind}: not an incident")
    attributes = _object(body.get("attributes"), where="data.attributes")
    resolved = _betterstack_resolved(data, attributes)
    return Fields(
        key=_betterstack_monitor(body) or text(body.get("id"), where="data.id", required=True),
        firing=not resolved,
        title=text(attributes.get("name"), where="data.attributes.name") or "Better Stack incident",
        summary=text(attributes.get("cause"), where="data.attributes.cause"),
        started_at=when(attributes.get("started_at"), where="data.attributes.started_at"),
        # The outage it ends: a retried resolve of the last one must not clear the monitor's next outage.
        ended_at=when(attributes.get("resolved_at"), where="data.attributes.resolved_at") if resolved else None,
        link=text(attributes.get("url"), where="data.attributes.url") or None,
    )


def _betterstack_resolved(data: dict[str, Any], attributes: dict[str, Any]) -> bool:
    """Whichever way Better Stack says it: the webhook's top-level `event`, the incident's `status`
    (Started, Acknowledged, Resolved...) or its `resolved_at`. An acknowledged incident is still down."""
    event = text(data.get("event"), where="event").lower()
    status = text(attributes.get("status"), where="data.attributes.status").lower()
    return event == "resolved" or status == "resolved" or bool(attributes.get("resolved_at"))


def _betterstack_monitor(body: dict[str, Any]) -> str:
    """Each outage is a new Better Stack incident (a new `id`); its monitor is what stays the same, as a
    check does for the other senders: `relationships.monitor` (empty for a heartbeat or a manual one)."""
    relationships = body.get("relationships")
    monitor = relationships.get("monitor") if isinstance(relationships, dict) else None
    ref = monitor.get("data") if isinstance(monitor, dict) else None
    found = text(ref.get("id"), where="data.relationships.monitor.data.id") if isinstance(ref, dict) else ""
    return f"monitor:{found}" if found else ""


PRESETS: dict[str, Reader] = {
    "uptimerobot": uptimerobot,
    "datadog": datadog,
    "sentry": sentry,
    "pingdom": pingdom,
    "betterstack": betterstack,
}
NAMES = {
    "uptimerobot": "UptimeRobot",
    "datadog": "Datadog",
    "sentry": "Sentry",
    "pingdom": "Pingdom",
    "betterstack": "Better Stack",
}
