"""Who is on call at an instant: the rotation from bot.yml plus dated overrides. Pure functions.

Hand-offs are wall-clock times in `oncall.timezone` ("monday 09:00" stays 09:00 local across a
DST change), so shift arithmetic is done on local *dates*, not on fixed 24 h / 168 h steps. A
hand-off that falls in a DST gap (e.g. 01:30 on the spring-forward night) happens at the first
valid instant after it; in a fold (autumn) it happens at the first of the two.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from bot.config import Escalation, OnCall, Override, Rotation

# Monday of the first full week of 2026, documented in config.Rotation.start.
DEFAULT_ROTATION_START = date(2026, 1, 5)
# Beyond this many hand-offs without a change of person, the shift is treated as open-ended.
_MAX_STEPS = 500


@dataclass(frozen=True)
class Shift:
    """`user` is on call from `start` until `end` (None: no change in sight)."""

    user: str | None
    start: datetime
    end: datetime | None


def _zone(oncall: OnCall) -> ZoneInfo:
    return ZoneInfo(oncall.timezone)


def _local_instant(day: date, rotation: Rotation, tz: ZoneInfo) -> datetime:
    """The UTC instant of the hand-off on local `day`, DST-correct (gap → its end, fold → first)."""
    naive = datetime.combine(day, rotation.handoff_time)
    first = naive.replace(tzinfo=tz, fold=0).astimezone(UTC)
    if first.astimezone(tz).replace(tzinfo=None) == naive:
        return first
    # The wall time does not exist (spring forward). fold=0 read it with the old offset (after the
    # gap in real time), fold=1 with the new one (before it); the transition lies between.
    low = naive.replace(tzinfo=tz, fold=1).astimezone(UTC)
    high = first
    new_offset = high.astimezone(tz).utcoffset()
    while high - low > timedelta(seconds=1):
        mid = low + (high - low) / 2
        if mid.astimezone(tz).utcoffset() == new_offset:
            high = mid
        else:
            low = mid
    return high.replace(microsecond=0)


def _period_days(rotation: Rotation) -> int:
    return 7 if rotation.period == "weekly" else 1


def _is_handoff_day(day: date, rotation: Rotation) -> bool:
    return rotation.period == "daily" or day.weekday() == rotation.handoff_weekday


def _handoff_at_or_before(at: datetime, rotation: Rotation, tz: ZoneInfo) -> tuple[date, datetime]:
    """The latest hand-off not after `at`, as (local date, UTC instant)."""
    day = at.astimezone(tz).date()
    for _ in range(16):
        if _is_handoff_day(day, rotation):
            instant = _local_instant(day, rotation, tz)
            if instant <= at:
                return day, instant
        day -= timedelta(days=1)
    raise AssertionError("no hand-off within 16 days")  # pragma: no cover


def _anchor(rotation: Rotation, tz: ZoneInfo) -> date:
    """Local date of the hand-off at which users[0] starts: the first hand-off at or after `start`."""
    if rotation.start is None:
        start = datetime.combine(DEFAULT_ROTATION_START, rotation.handoff_time).replace(tzinfo=tz)
    elif rotation.start.tzinfo is None:
        start = rotation.start.replace(tzinfo=tz)
    else:
        start = rotation.start
    start = start.astimezone(UTC)
    day = start.astimezone(tz).date()
    for _ in range(16):
        if _is_handoff_day(day, rotation) and _local_instant(day, rotation, tz) >= start:
            return day
        day += timedelta(days=1)
    raise AssertionError("no hand-off within 16 days")  # pragma: no cover


def rotation_user(rotation: Rotation, tz: ZoneInfo, at: datetime) -> str:
    """The rotation's person at `at`, ignoring overrides (before the start the order runs backwards)."""
    day, _ = _handoff_at_or_before(at, rotation, tz)
    shifts = (day - _anchor(rotation, tz)).days // _period_days(rotation)
    return rotation.users[shifts % len(rotation.users)]


def next_handoff(rotation: Rotation, tz: ZoneInfo, at: datetime) -> datetime:
    """The first rotation hand-off strictly after `at`."""
    day, _ = _handoff_at_or_before(at, rotation, tz)
    while True:
        day += timedelta(days=_period_days(rotation))
        instant = _local_instant(day, rotation, tz)
        if instant > at:
            return instant


def active_override(overrides: list[Override], at: datetime) -> Override | None:
    """The override in force at `at`; when several overlap, the one that started last wins."""
    best: Override | None = None
    for override in overrides:
        if override.start <= at < override.end and (best is None or override.start >= best.start):
            best = override
    return best


def on_call_at(oncall: OnCall, at: datetime) -> str | None:
    """The user paged for `oncall` at `at`; None when there is neither a rotation nor an override."""
    _require_aware(at)
    override = active_override(list(oncall.overrides), at)
    if override is not None:
        return override.user
    if oncall.rotation is None:
        return None
    return rotation_user(oncall.rotation, _zone(oncall), at)


def _next_boundary(oncall: OnCall, at: datetime) -> datetime | None:
    """The next instant after `at` at which the answer of `on_call_at` may change."""
    candidates = [t for o in oncall.overrides for t in (o.start, o.end) if t > at]
    if oncall.rotation is not None:
        candidates.append(next_handoff(oncall.rotation, _zone(oncall), at))
    return min(candidates) if candidates else None


def shifts(oncall: OnCall, at: datetime) -> Iterator[Shift]:
    """The shift in force at `at` (its `start` is `at`), then the following ones, in order."""
    _require_aware(at)
    current = on_call_at(oncall, at)
    start = at
    cursor = at
    steps = 0
    while True:
        boundary = _next_boundary(oncall, cursor)
        steps += 1
        if boundary is None or steps > _MAX_STEPS:
            yield Shift(current, start, None)
            return
        person = on_call_at(oncall, boundary)
        if person != current:
            yield Shift(current, start, boundary)
            current, start, steps = person, boundary, 0
        cursor = boundary


def now_and_next(oncall: OnCall, at: datetime) -> tuple[Shift, Shift | None]:
    """For `/incident oncall`: the current shift and the one after it."""
    iterator = shifts(oncall, at)
    current = next(iterator)
    following = next(iterator, None) if current.end is not None else None
    return current, following


def _require_aware(at: datetime) -> None:
    if at.tzinfo is None:
        raise ValueError("on-call lookups need an aware datetime; use clock.now()")


@dataclass(frozen=True)
class LevelOnCall:
    """One escalation level for `/incident oncall`: who it pages now, and after the next hand-off."""

    level: int
    name: str
    after: timedelta
    now: tuple[str, ...]  # user IDs, user groups (S…) and @handles, as the level would page them now
    next: tuple[str, ...]  # the same after `next_at`; equal to `now` when the level has no `oncall`
    next_at: datetime | None  # when `oncall` hands off next (None: no rotation, or it never changes)


def per_level(escalation: Escalation, oncall: OnCall, at: datetime) -> list[LevelOnCall]:
    """Who each level pages at `at` and after the next on-call change (`oncall` resolved, groups kept)."""
    current, following = now_and_next(oncall, at)

    def expand(targets: list[str], person: str | None) -> tuple[str, ...]:
        out: list[str] = []
        for target in targets:
            value = person if target == "oncall" else target
            if value is not None and value not in out:
                out.append(value)
        return tuple(out)

    result = []
    for number, level in enumerate(escalation.levels, start=1):
        uses_oncall = "oncall" in level.notify
        now_targets = expand(level.notify, current.user)
        if uses_oncall and following is not None:
            next_targets, next_at = expand(level.notify, following.user), following.start
        else:
            next_targets, next_at = now_targets, None
        result.append(LevelOnCall(number, level.name, level.after, now_targets, next_targets, next_at))
    return result
