"""`/incident started <time>`: when impact began, as typed (`-15m`, `14:05`, `2026-12-05 14:05`, with `UTC`,
`Z` or an offset) and as resolved to an instant, in the typist's time zone: the `Started` command
(grammar.py re-exports it); `impact` checks and stores the instant."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta, tzinfo

from bot.exceptions import UsageError
from bot.incidents.command import Command

USAGE = "/incident started <HH:MM | HH:MM UTC | 2026-12-05 14:05 | -15m>"


def _fail(message: str) -> UsageError:
    return UsageError(message, usage=USAGE)


# A time at most this far still to come is now, not yesterday's nor refused: the typist's watch is ahead.
AHEAD = timedelta(minutes=15)


@dataclass(frozen=True)
class Started(Command):
    """`/incident started`: impact began `ago` before now; at an absolute `at`; or, in the typist's own
    time zone unless `in_utc` (typed with `UTC` or `Z`), at a `clock` time (today, else yesterday) or a
    `local` date and time. Any of the last three a few minutes ahead is now."""

    ago: timedelta | None = None
    at: datetime | None = None
    clock: time | None = None
    local: datetime | None = None  # naive: a date and time typed without a zone
    in_utc: bool = False

    @property
    def zoned(self) -> bool:
        """Read in the typist's zone: a time of day or a date and time typed without a zone."""
        return (self.clock is not None and not self.in_utc) or self.local is not None

    def resolve(self, now: datetime, *, latest: datetime | None = None, zone: tzinfo = UTC) -> datetime:
        """`latest`: when a resolved incident ended. A clock time is the last one before it (or before
        now), since the correction is usually made the next day, while writing the post-mortem: a time
        of day still to come today means yesterday's, as a person reporting an outage means one past.
        But a time at most `AHEAD` to come is now (`ahead` says by how much): the typist's watch runs a
        little ahead of the server's, or they rounded up; yesterday's would be a day off, and a date
        and time refused as in the future would only make them type it again, a minute older.
        `zone`: the typist's, for times typed without one."""
        if self.ago is not None:
            return now - self.ago
        if self.ahead(now, latest=latest, zone=zone) is not None:
            return now
        if self.clock is None:
            return self._meant(now, zone=zone)[0]  # a date and time: the one instant it means
        day = self._on(0, now=now, latest=latest, zone=zone)
        until = min(now, latest) if latest is not None else now
        return day if day <= until else self._on(-1, now=now, latest=latest, zone=zone)

    def ahead(self, now: datetime, *, latest: datetime | None = None, zone: tzinfo = UTC) -> timedelta | None:
        """How far the typed time is still to come (a clock time today's, or tomorrow's just before
        midnight), when that is at most `AHEAD` on an incident still open (`latest` None): `resolve` then
        reads it as now. None otherwise: after a resolve, the typist's watch has nothing to do with which
        day is meant, and a time after the resolve is refused anyway."""
        if self.ago is not None or latest is not None:
            return None
        for meant in self._meant(now, zone=zone):
            to_come = meant - now
            if timedelta(0) < to_come <= AHEAD:
                return to_come
        return None

    def _meant(self, now: datetime, *, zone: tzinfo) -> list[datetime]:
        """The instants the typed time may mean, in UTC: a date and time one, a clock time today's or
        tomorrow's."""
        if self.at is not None:
            return [self.at]
        if self.local is not None:
            return [self.local.replace(tzinfo=zone).astimezone(UTC)]
        return [self._on(days, now=now, latest=None, zone=zone) for days in (0, 1)]

    def _on(self, days: int, *, now: datetime, latest: datetime | None, zone: tzinfo) -> datetime:
        """The clock time `days` from the day of `latest` (else of now), in its zone, in UTC."""
        assert self.clock is not None
        zone = UTC if self.in_utc else zone
        until = min(now, latest) if latest is not None else now
        day = until.astimezone(zone).date() + timedelta(days=days)
        return datetime.combine(day, self.clock, tzinfo=zone).astimezone(UTC)


_AGO = re.compile(r"^-?((?:\d+\s*[smhd]\s*)+)(?:ago)?$")
_CLOCK = re.compile(r"^(\d{1,2}):(\d{2})(?::(\d{2}))?(z|utc)?$")


def parse(text: str) -> Started:
    """`-15m`, `15m ago`, `1h30m ago`, `14:05` (the typist's zone), `14:05 UTC`, `14:05Z`,
    `2026-12-05 14:05` (the typist's zone), `2026-12-05T14:05Z` or with an offset (`+01:00`)."""
    raw = text.strip().lower()
    compact = raw.replace(" ", "")
    if not raw:
        raise _fail("Say when the impact started, e.g. `/incident started -15m` or `14:05`.")
    match = _AGO.fullmatch(compact)
    if match and (compact.startswith("-") or compact.endswith("ago")):
        total = sum(
            int(n) * {"s": 1, "m": 60, "h": 3600, "d": 86400}[unit]
            for n, unit in re.findall(r"(\d+)([smhd])", match.group(1))
        )
        if not 0 < total <= 30 * 86400:
            raise _fail("Give a time within the last 30 days, e.g. `-15m` or `-2h`.")
        return Started(name="started", ago=timedelta(seconds=total))
    match = _CLOCK.fullmatch(compact)
    if match:
        hour, minute, second = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
        if hour > 23 or minute > 59 or second > 59:
            raise _fail(f"`{text.strip()}` is not a time of day.")
        return Started(name="started", clock=time(hour, minute, second), in_utc=bool(match.group(4)))
    iso = raw.replace(" ", "t", 1).removesuffix("utc").strip().upper().replace("Z", "+00:00")
    if raw.endswith("utc") and "+" not in iso[10:] and "-" not in iso[10:]:
        iso += "+00:00"  # `2026-12-05 14:05 UTC`
    try:
        parsed = datetime.fromisoformat(iso)
        # A zone can push the date past year 1 or 9999 (OverflowError), the typist's too: a typo either way.
        if not parsed.tzinfo and not 1 < parsed.year < 9999:
            raise OverflowError
        at = parsed.astimezone(UTC) if parsed.tzinfo else None
    except (ValueError, OverflowError):
        raise _fail(
            f"`{text.strip()}` is not a time: write `-15m`, `14:05`, `14:05 UTC` or `2026-12-05 14:05`."
        ) from None
    return Started(name="started", local=parsed) if at is None else Started(name="started", at=at)
