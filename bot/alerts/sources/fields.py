"""What every sender's body is read into, and how that becomes the shared `Notification`."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from bot.alerts.payloads import AlertItem, Notification, PayloadError, parse_time

MAX_LABELS = 30
MAX_VALUE = 300


@dataclass(frozen=True)
class Fields:
    key: str  # the sender's id of the check/monitor/issue: one group per key
    firing: bool
    title: str
    summary: str = ""
    severity: str | None = None
    service: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    started_at: datetime | None = None
    link: str | None = None
    # One of several alerts the sender tells apart under `key` (a Datadog multi-alert monitor's group,
    # `host:web-1`), each delivery about one of them; '' when the key is the whole alert.
    alert: str = ""
    # The key an earlier version stored this sender's alert under (Datadog's `aggreg_key`): a group still
    # open under it takes the delivery, and a resolve clears what was stored there.
    former_key: str = ""
    # When the sender says the alert ended, by its own clock (resolved only); else the bot's clock is used.
    ended_at: datetime | None = None
    # `started_at` is the time of this notification (a repeat's is later), not when the alert began: a repeat
    # of an alert that still fires keeps the start stored.
    starts_per_repeat: bool = False


@dataclass(frozen=True)
class Ignored:
    """A delivery that is not an alert (Sentry's installation hook, an assignment): answered 200, not stored."""

    reason: str


def text(value: Any, *, where: str, required: bool = False) -> str:
    if value is None or value == "":
        if required:
            raise PayloadError(f"{where} is missing")
        return ""
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PayloadError(f"{where}: expected a string, got {type(value).__name__}")
    return str(value).strip()


def when(value: Any, *, where: str) -> datetime | None:
    """RFC 3339, or a Unix time in seconds or milliseconds (senders use all three)."""
    if value is None or value == "":
        return None
    number: float | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str) and value.strip().replace(".", "", 1).isdigit():
        number = float(value.strip())
    if number is not None:
        if number > 1e11:  # milliseconds
            number /= 1000.0
        try:
            return datetime.fromtimestamp(number, tz=UTC)
        except (OverflowError, OSError, ValueError):
            raise PayloadError(f"{where}: {value!r} is not a time") from None
    return parse_time(value, where=where)


def tag_labels(value: Any, *, where: str) -> dict[str, str]:
    """Tags as labels: an object, a list of `key:value` strings or `[key, value]` pairs, or `a:b,c:d`."""
    out: dict[str, str] = {}
    if value is None or value == "":
        return out
    for item in _tag_items(value, where=where):
        pair = _tag_pair(item)
        if pair is None:
            continue
        key, val = pair
        if isinstance(val, dict | list) or val is None or not str(key).strip() or not str(val).strip():
            continue  # a bare tag (`monitor`) or an empty value says nothing a label could
        out.setdefault(str(key).strip()[:100], str(val).strip()[:MAX_VALUE])
        if len(out) >= MAX_LABELS:
            break
    return out


def _tag_items(value: Any, *, where: str) -> list[Any]:
    if isinstance(value, dict):
        return [[k, v] for k, v in value.items()]
    if isinstance(value, str):
        return [t for t in value.split(",") if t.strip()]
    if isinstance(value, list):
        return value
    raise PayloadError(f"{where}: expected tags as an object, a list or 'key:value,...'")


def _tag_pair(item: Any) -> tuple[Any, Any] | None:
    """One tag's key and value: `[key, value]`, `{"key": ..., "value": ...}` or `key:value`; None for others."""
    if isinstance(item, list | tuple) and len(item) == 2:
        return item[0], item[1]
    if isinstance(item, dict) and "key" in item and "value" in item:
        return item["key"], item["value"]
    if isinstance(item, str):
        key, _, val = item.strip().partition(":")
        return key, val
    return None


def _fingerprint(*parts: str) -> str:
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:16]


def notification(source: str, fields: Fields, *, now: datetime) -> Notification:
    """One group per sender key; each delivery is about one alert of it, whose labels say what the sender said."""
    if not fields.key:
        raise PayloadError("the alert has no id to group it by")
    status = "firing" if fields.firing else "resolved"
    # The sender's own `severity`/`service` labels stay unless the preset read one of its own.
    labels = {k: v for k, v in fields.labels.items() if k != "alertname"}
    labels["alertname"] = (fields.title or "alert")[:MAX_VALUE]
    if fields.severity:
        labels["severity"] = fields.severity[:50]
    if fields.service:
        labels["service"] = fields.service[:100]
    annotations = {"summary": fields.summary[:3000]} if fields.summary else {}
    whole = _fingerprint(source, fields.key)
    fingerprint = _fingerprint(source, fields.key, fields.alert) if fields.alert else whole
    clears = _cleared(source, fields) if not fields.firing else ()
    alert = AlertItem(
        fingerprint=fingerprint,
        status=status,
        labels=labels,
        annotations=annotations,
        starts_at=fields.started_at,
        ends_at=(fields.ended_at or now) if not fields.firing else None,
        generator_url=fields.link or None,
    )
    return Notification(
        source=source,
        group_key=f"{source}:{fields.key}"[:2000],
        status=status,
        receiver="",
        group_labels={},
        common_labels=dict(labels),
        common_annotations=dict(annotations),
        external_url=fields.link or None,
        truncated=0,
        alerts=[alert],
        # The group's other alerts stand; the one stored before alerts were told apart clears with any.
        partial=bool(fields.alert),
        clears=clears,
        former_group_key=f"{source}:{fields.former_key}"[:2000] if fields.former_key else "",
        ends_from_sender=not fields.firing and fields.ended_at is not None,
        starts_per_repeat=fields.starts_per_repeat,
    )


def _cleared(source: str, fields: Fields) -> tuple[str, ...]:
    """What a resolve clears besides its own alert: the whole-key alert stored before the sender's alerts
    were told apart, and what was stored under the former key."""
    keys = [fields.key, fields.former_key] if fields.former_key else [fields.key]
    out = [_fingerprint(source, key) for key in keys if fields.alert or key != fields.key]
    if fields.alert and fields.former_key:
        out.append(_fingerprint(source, fields.former_key, fields.alert))
    return tuple(out)
