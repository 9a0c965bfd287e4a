"""Alertmanager (webhook version 4) and Grafana (unified alerting webhook) payloads, normalised.

Both senders share the Alertmanager shape: `status`, `groupKey`, `groupLabels`, `commonLabels`,
`commonAnnotations`, `externalURL`, `truncatedAlerts` and `alerts[]` with `status`, `labels`,
`annotations`, `startsAt`, `endsAt` (`0001-01-01T00:00:00Z` while firing), `generatorURL` and
`fingerprint`. Grafana says `version: "1"` and adds `orgId`, `title`, `state`, `message`, and per
alert `values`, `silenceURL`, `dashboardURL`, `panelURL`, `imageURL`.

A group is the sender's: independent Alertmanagers (or Grafana instances) with the same routes send the
same `groupKey`, so the key is scoped by the `externalURL` the sender names itself with (`sender_of`).

Parsing is strict about structure (a 400 with the reason tells whoever set up the webhook what
is wrong) and lenient about extras (unknown fields are ignored, as both senders add fields).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import SplitResult, urlsplit, urlunsplit

from bot.alerts.limits import KEPT_ALERTS_PER_DELIVERY, Overflow

SOURCES = ("alertmanager", "grafana")
STATUSES = ("firing", "resolved")
_ZERO_TIME = re.compile(r"^0001-01-01T00:00:00(\.0+)?Z$")
_FRACTION = re.compile(r"(\.\d{6})\d+")


class PayloadError(ValueError):
    """The body is not a notification we understand; the message says why (sent back with the 400)."""


def summary_of(annotations: dict[str, str]) -> str:
    """What an alert says about itself: its `summary`, else its `description`."""
    return annotations.get("summary") or annotations.get("description") or ""


@dataclass(frozen=True)
class AlertItem:
    fingerprint: str
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: datetime | None
    ends_at: datetime | None
    generator_url: str | None

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "") or "alert"

    @property
    def summary(self) -> str:
        return summary_of(self.annotations)


@dataclass(frozen=True)
class Notification:
    source: str
    group_key: str
    status: str
    receiver: str
    group_labels: dict[str, str]
    common_labels: dict[str, str]
    common_annotations: dict[str, str]
    external_url: str | None
    truncated: int
    alerts: list[AlertItem] = field(default_factory=list)
    org_id: str = ""  # Grafana's organisation: two orgs send the same groupKey for their own alerts
    # Firing alerts in the whole delivery, those beyond the kept ones included (the sender's own
    # `truncatedAlerts` only while the group fires: it does not say their status).
    firing_total: int = 0
    # A delivery about some alerts of the group only (a Datadog multi-alert monitor sends one per host):
    # the group's other stored alerts keep their status, and the group fires while any of them does.
    partial: bool = False
    # Alerts stored under an older fingerprint for what this delivery names: a resolved delivery clears them.
    clears: tuple[str, ...] = ()
    # The key an earlier version gave this group: while a group stored under it is open, it is this group.
    former_group_key: str = ""
    # A resolved alert's `ends_at` is the sender's own time of the resolve (a preset that says it), not the
    # bot's clock: a late resolve of an earlier outage can then be told apart (`ordering`).
    ends_from_sender: bool = False
    # Each firing repeat says when it was sent, not when the alert began (a preset's `starts_per_repeat`).
    starts_per_repeat: bool = False
    # The delivery acts once: the same key again is a replay, and changes nothing (`service`); '' for most.
    replay_key: str = ""
    # Who sent it, as its payload says (`sender_of` its `externalURL`); '' when it does not say.
    sender: str = ""

    def _identity(self, sender: str) -> str:
        """Grafana's org 1 (its default, and what rows stored before orgs were told apart belong to) keeps
        the plain key; another org's key is prefixed with its id; a named sender's with its URL."""
        key = self.group_key if self.org_id in ("", "1") else f"org:{self.org_id}\n{self.group_key}"
        return f"sender:{sender}\n{key}" if sender else key

    @property
    def key_hash(self) -> str:
        """The group's identity: its key, within its sender."""
        return hashlib.sha256(self._identity(self.sender).encode()).hexdigest()

    @property
    def former_key_hash(self) -> str | None:
        """The identity an earlier version gave this group: the key without its sender (groups stored
        before senders were told apart), or a preset's former key."""
        if self.former_group_key:
            return hashlib.sha256(self.former_group_key.encode()).hexdigest()
        return hashlib.sha256(self._identity("").encode()).hexdigest() if self.sender else None

    @property
    def firing(self) -> list[AlertItem]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def alertname(self) -> str:
        names = sorted({a.name for a in self.alerts})
        return self.common_labels.get("alertname") or (names[0] if len(names) == 1 else ", ".join(names[:3]))

    @property
    def summary(self) -> str:
        return summary_of(self.common_annotations) or next((a.summary for a in self.alerts if a.summary), "")

    def title(self) -> str:
        name = self.alertname or "Alert"
        summary = self.summary
        text = f"{name}: {summary}" if summary and summary != name else name
        return " ".join(text.split())[:300]


# A `\ud83d` escape with no pair: json.loads keeps it as a lone surrogate, which no database driver encodes.
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _storable_value(value: Any) -> Any:
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value.replace("\x00", ""))
    if isinstance(value, dict):
        return {_storable_value(k): _storable_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_storable_value(v) for v in value)
    if isinstance(value, AlertItem):
        return replace(value, **{f.name: _storable_value(getattr(value, f.name)) for f in fields(value)})
    return value


def storable(note: Notification) -> Notification:
    """The delivery as the database can hold it, so that no retry of the sender turns into a 503 for good:
    without NUL characters (PostgreSQL text cannot hold one), and with a lone UTF-16 surrogate (a sender
    that cut an emoji in half, as a JavaScript client's truncated message does) as U+FFFD. Its links lose any
    `user:password@` (`without_credentials`): they are shown in the alerts channel and on the dashboard."""
    note = replace(note, **{f.name: _storable_value(getattr(note, f.name)) for f in fields(note)})
    alerts = [replace(a, generator_url=without_credentials(a.generator_url)) for a in note.alerts]
    return replace(note, external_url=without_credentials(note.external_url), alerts=alerts)


def _split(url: str) -> tuple[SplitResult, str] | None:
    """`url` split, and its host and port as a URL without credentials spells them (the host in lower case,
    an IPv6 one in brackets; '' when it names no host); None when it is not a URL that can be read."""
    try:
        parts = urlsplit(url)
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if not host:
        return parts, ""
    return parts, (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")


def without_credentials(url: str | None) -> str | None:
    """`url` without the `user:password@` a sender may put in it (an Alertmanager behind basic auth, a
    monitor's checked URL); None when it is not a URL that can be read."""
    if not url:
        return url
    split = _split(url)
    if split is None:
        return None
    parts, netloc = split
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=netloc)) if netloc else None


def sender_of(external_url: str | None) -> str:
    """The sender an `externalURL` names, spelled one way (scheme and host in lower case, no trailing `/`,
    no credentials, query or fragment): '' when there is none, or it is not a URL."""
    split = _split((external_url or "").strip())
    if split is None or not split[0].scheme or not split[1]:
        return ""
    parts, netloc = split
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def parse_time(value: Any, *, where: str) -> datetime | None:
    """RFC 3339 with up to nanoseconds (Go's format); Go's zero time means "not set"."""
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected an RFC 3339 time string, got {type(value).__name__}")
    text = value.strip()
    if _ZERO_TIME.match(text):
        return None
    text = _FRACTION.sub(r"\1", text.replace("z", "Z"))
    if text.endswith("Z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise PayloadError(f"{where}: {value!r} is not an RFC 3339 time") from None
    if parsed.tzinfo is None:
        raise PayloadError(f"{where}: {value!r} has no time zone")
    if parsed.year <= 1:
        return None
    if parsed.year >= 9999:  # at the edge of what datetime holds: converting or adding to it overflows
        raise PayloadError(f"{where}: {value!r} is too far in the future")
    return parsed.astimezone(UTC)


def _string_map(value: Any, *, where: str, required: bool = False) -> dict[str, str]:
    if value is None:
        if required:
            raise PayloadError(f"{where} is missing")
        return {}
    if not isinstance(value, dict):
        raise PayloadError(f"{where}: expected an object of strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for key, item in value.items():
        if isinstance(item, bool) or not isinstance(item, str | int | float):
            raise PayloadError(f"{where}.{key}: expected a string, got {type(item).__name__}")
        out[str(key)] = str(item)
    return out


def _text(value: Any, *, where: str, required: bool = False) -> str:
    if value is None:
        if required:
            raise PayloadError(f"{where} is missing")
        return ""
    if not isinstance(value, str):
        raise PayloadError(f"{where}: expected a string, got {type(value).__name__}")
    if required and not value.strip():
        raise PayloadError(f"{where} is empty")
    return value


def _status(value: Any, *, where: str, default: str | None = None) -> str:
    if value is None and default is not None:
        return default
    if not isinstance(value, str) or value.strip().lower() not in STATUSES:
        raise PayloadError(f"{where}: expected 'firing' or 'resolved', got {value!r}")
    return value.strip().lower()


def derived_fingerprint(labels: dict[str, str]) -> str:
    """When a sender leaves the fingerprint out: a stable hash of the label set (same labels, same alert)."""
    canonical = json.dumps(sorted(labels.items()), separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def decode(body: bytes) -> dict[str, Any]:
    if not body.strip():
        raise PayloadError("the body is empty: send the webhook JSON")
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError) as exc:
        raise PayloadError(f"the body is not JSON ({exc})") from None
    except RecursionError:
        raise PayloadError(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
    if not isinstance(data, dict):
        raise PayloadError(f"the body must be a JSON object, got {type(data).__name__}")
    if _depth(data) > MAX_DEPTH:
        raise PayloadError(f"the JSON is nested deeper than {MAX_DEPTH} levels")
    return data


# Alertmanager's `truncatedAlerts` is a uint64; no group holds more alerts than this, and the stored
# counts (an INTEGER column in PostgreSQL) must not overflow, or every retry of the delivery is a 503.
MAX_TRUNCATED = 1_000_000_000
# Alertmanager and Grafana nest five or six levels; nothing real comes near this.
MAX_DEPTH = 32


def _depth(data: Any) -> int:
    """How deep a decoded JSON value nests (iterative: a hostile body must not exhaust the stack)."""
    deepest = 0
    stack: list[tuple[Any, int]] = [(data, 1)]
    while stack:
        value, level = stack.pop()
        deepest = max(deepest, level)
        if deepest > MAX_DEPTH:
            return deepest
        children = value.values() if isinstance(value, dict) else value if isinstance(value, list) else ()
        stack.extend((child, level + 1) for child in children)
    return deepest


def parse(source: str, data: dict[str, Any], *, overflow: Overflow | None = None) -> Notification:
    """`data` with its alerts in full, or cut to the kept ones by the stream reader with `overflow`
    counting the rest; alerts beyond `KEPT_ALERTS_PER_DELIVERY` are counted as truncated either way."""
    if source not in SOURCES:
        raise PayloadError(f"unknown alert source {source!r}")
    version = data.get("version")
    if source == "alertmanager" and version is not None and str(version) != "4":
        raise PayloadError(f'webhook version {version!r} is not supported: Alertmanager sends version "4"')
    group_key = _text(data.get("groupKey"), where="groupKey", required=True)
    status = _status(data.get("status"), where="status")
    overflow = overflow or Overflow()
    raw_alerts = _kept_alerts(data.get("alerts"), overflow=overflow)
    truncated = data.get("truncatedAlerts") or 0
    if isinstance(truncated, bool) or not isinstance(truncated, int) or truncated < 0:
        raise PayloadError(f"truncatedAlerts: expected a non-negative integer, got {truncated!r}")
    truncated = min(truncated, MAX_TRUNCATED)  # a count the database's integer columns hold, sums included
    alerts = _alert_items(raw_alerts, status=status)
    external_url = _text(data.get("externalURL"), where="externalURL") or None
    unsaid = overflow.dropped - overflow.firing - overflow.resolved  # they take the notification's status
    firing_total = sum(1 for a in alerts if a.status == "firing") + overflow.firing
    if status == "firing":
        firing_total += unsaid + truncated
    return Notification(
        source=source,
        group_key=group_key,
        status=status,
        receiver=_text(data.get("receiver"), where="receiver"),
        group_labels=_string_map(data.get("groupLabels"), where="groupLabels"),
        common_labels=_string_map(data.get("commonLabels"), where="commonLabels"),
        common_annotations=_string_map(data.get("commonAnnotations"), where="commonAnnotations"),
        external_url=external_url,
        truncated=truncated + overflow.dropped,
        alerts=alerts,
        firing_total=firing_total,
        org_id=_org_id(data.get("orgId")) if source == "grafana" else "",
        sender=sender_of(external_url),
    )


def _kept_alerts(value: Any, *, overflow: Overflow) -> list[Any]:
    """The alerts kept, at most `KEPT_ALERTS_PER_DELIVERY`; the rest only counted in `overflow`."""
    if not isinstance(value, list):
        raise PayloadError("alerts: expected a list of alerts" if value is not None else "alerts is missing")
    raw_alerts: list[Any] = value
    if not raw_alerts:
        raise PayloadError("alerts is empty: nothing to record")
    if len(raw_alerts) > KEPT_ALERTS_PER_DELIVERY:
        for i, extra in enumerate(raw_alerts[KEPT_ALERTS_PER_DELIVERY:], start=KEPT_ALERTS_PER_DELIVERY):
            if not isinstance(extra, dict):
                raise PayloadError(f"alerts[{i}]: expected an object, got {type(extra).__name__}")
            overflow.count(extra.get("status"))
        raw_alerts = raw_alerts[:KEPT_ALERTS_PER_DELIVERY]
    return raw_alerts


def _alert_items(raw_alerts: list[Any], *, status: str) -> list[AlertItem]:
    """Each alert once (by fingerprint, the first wins); an alert without a status takes the notification's."""
    alerts: list[AlertItem] = []
    seen: set[str] = set()
    for i, raw in enumerate(raw_alerts):
        where = f"alerts[{i}]"
        if not isinstance(raw, dict):
            raise PayloadError(f"{where}: expected an object, got {type(raw).__name__}")
        labels = _string_map(raw.get("labels"), where=f"{where}.labels", required=True)
        fingerprint = _fingerprint(raw.get("fingerprint"), labels=labels, where=f"{where}.fingerprint")
        if fingerprint in seen:
            continue  # the same alert twice in one delivery: keep the first
        seen.add(fingerprint)
        alerts.append(
            AlertItem(
                fingerprint=fingerprint,
                status=_status(raw.get("status"), where=f"{where}.status", default=status),
                labels=labels,
                annotations=_string_map(raw.get("annotations"), where=f"{where}.annotations"),
                starts_at=parse_time(raw.get("startsAt"), where=f"{where}.startsAt"),
                ends_at=parse_time(raw.get("endsAt"), where=f"{where}.endsAt"),
                generator_url=_text(raw.get("generatorURL"), where=f"{where}.generatorURL") or None,
            )
        )
    return alerts


def _fingerprint(value: Any, *, labels: dict[str, str], where: str) -> str:
    """The sender's fingerprint (hashed down when longer than the column), else one derived from the labels."""
    fingerprint = _text(value, where=where).strip() or derived_fingerprint(labels)
    if len(fingerprint) > 64:
        fingerprint = hashlib.sha256(fingerprint.encode()).hexdigest()[:32]
    return fingerprint


def _org_id(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool) or not isinstance(value, int | str) or not str(value).strip().isdigit():
        raise PayloadError(f"orgId: expected an organisation number, got {value!r}")
    return str(int(str(value).strip()))
