"""Deliveries that arrive out of order: a late resolve must not clear an alert that fires again.

Alertmanager and Grafana deliver a group's notifications one after another, but a retried delivery,
the other Alertmanager of an HA pair, or a slow request on another replica can land after a newer
one. A resolved alert that ended before the firing one stored for its fingerprint started is about
an earlier occurrence: the alert still fires. Only the senders' own times are compared (startsAt and
endsAt both come from Prometheus or Grafana, or from a preset sender that says when its check
recovered: a retried resolve of Better Stack's, Pingdom's, Datadog's or UptimeRobot's last outage can
land after the next one started, and a Sentry issue's resolve, retried or replayed, is bounded by its
`lastSeen`); a resolve whose end time is the bot's clock is left alone (an UptimeRobot webhook without
`alertDateTime`, a Sentry metric alert without `date_closed`, a `map:` source: README, "Alerts").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import datetime

from bot.alerts.models import AlertInstance
from bot.alerts.payloads import SOURCES, AlertItem, Notification


def without_late_resolves(note: Notification, stored: Sequence[AlertInstance]) -> Notification:
    """The delivery with each late resolve read as "still firing" (the stored alert as it is)."""
    if note.source not in SOURCES and not note.ends_from_sender:
        return note
    firing = {i.fingerprint: i.starts_at for i in stored if i.status == "firing" and i.starts_at is not None}
    alerts = [
        replace(alert, status="firing", starts_at=firing[alert.fingerprint], ends_at=None)
        if _late(alert, firing.get(alert.fingerprint))
        else alert
        for alert in note.alerts
    ]
    late = sum(1 for before, after in zip(note.alerts, alerts, strict=True) if before is not after)
    if not late:
        return note
    return replace(note, status="firing", alerts=alerts, firing_total=note.firing_total + late)


def _late(alert: AlertItem, firing_since: datetime | None) -> bool:
    """Resolved before the stored firing occurrence of the same alert started."""
    return (
        firing_since is not None
        and alert.status == "resolved"
        and alert.ends_at is not None
        and alert.ends_at < firing_since
    )
