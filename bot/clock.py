"""Time as a dependency, so escalation and metrics are tested without waiting."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Protocol
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


class Clock(Protocol):
    def now(self) -> datetime:
        """Timezone-aware UTC now."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def advance(self, delta: timedelta | float) -> datetime:
        self._now += delta if isinstance(delta, timedelta) else timedelta(seconds=delta)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


def utc(dt: datetime) -> datetime:
    """Normalise to aware UTC; naive values are taken as UTC (SQLite drops the zone)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def utc_text(when: datetime, fmt: str = "%Y-%m-%d %H:%M") -> str:
    """A time as plain UTC text: what is stored, logged and read outside Slack, and Slack's fallback."""
    return f"{utc(when):{fmt}} UTC"


def elapsed(start: datetime, end: datetime) -> timedelta:
    """`end - start` between the two times as they are shown, cut to the second: 09:00:00.9 → 09:00:04.1
    is 4s, so a T+ or a duration agrees with the times printed beside it (one second either way otherwise)."""
    return utc(end).replace(microsecond=0) - utc(start).replace(microsecond=0)


def format_duration(delta: timedelta | None) -> str:
    """`1h 05m`, `3m 20s`, `45s`: short enough for a Slack line."""
    if delta is None:
        return "n/a"
    seconds = int(delta.total_seconds())
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    days, rem = divmod(seconds, 86400)
    hours, rem = divmod(rem, 3600)
    minutes, secs = divmod(rem, 60)
    if days:
        return f"{sign}{days}d {hours}h {minutes:02d}m"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m"
    if minutes:
        return f"{sign}{minutes}m {secs:02d}s"
    return f"{sign}{secs}s"


@dataclass(frozen=True)
class Zone:
    """A person's time zone, for times they type without one; `known` is False when it is UTC by default."""

    tz: tzinfo
    label: str
    known: bool = True


UTC_ZONE = Zone(UTC, "UTC", known=False)


def zone_of(name: str | None, offset_seconds: int | None) -> Zone:
    """The zone a chat platform gives for a person: its IANA name (summer time included), else its offset
    now (a server without the tz database), else UTC, which the caller then says it assumed."""
    if name:
        try:
            return Zone(ZoneInfo(name), name)
        except (ZoneInfoNotFoundError, ValueError, OSError):
            pass
    if offset_seconds is not None and abs(offset_seconds) < 86400:
        fixed = timezone(timedelta(seconds=offset_seconds))
        return Zone(fixed, "UTC" if not offset_seconds else str(fixed))
    return UTC_ZONE
