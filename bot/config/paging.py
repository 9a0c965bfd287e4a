"""`oncall:`, `escalation:` and `reminders:`: who is paged, when, and how often they are nudged."""

from __future__ import annotations

import re
from datetime import datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from bot.config.base import Duration, Interval, Severity, Strict, Target, UserId, WebUrl

_WEEKDAYS = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]


class Rotation(Strict):
    period: Literal["daily", "weekly"] = "weekly"
    handoff: str = "monday 09:00"
    users: list[UserId] = Field(min_length=1)
    start: datetime | None = None  # the hand-off at which users[0] started; defaults to 2026-01-05

    @field_validator("handoff", mode="before")
    @classmethod
    def _unquoted_time(cls, value: object) -> object:
        """YAML 1.1 reads an unquoted `handoff: 10:00` as the number 600 (base 60): say so, not "not a string"."""
        if isinstance(value, int) and not isinstance(value, bool):
            hint = f"{value // 60}:{value % 60:02d}" if 0 <= value < 24 * 60 else "09:00"
            raise ValueError(
                f'handoff {value}: quote the time, e.g. handoff: "{hint}" (YAML reads an unquoted {hint} as a number)'
            )
        return value

    @field_validator("handoff")
    @classmethod
    def _handoff(cls, value: str) -> str:
        parts = value.strip().lower().split()
        clock = parts[-1] if parts else ""
        if not re.fullmatch(r"\d{1,2}:\d{2}", clock):
            raise ValueError(f"handoff {value!r}: write 'monday 09:00' (weekly) or '09:00' (daily)")
        hour, minute = (int(p) for p in clock.split(":"))
        if hour > 23 or minute > 59:
            raise ValueError(f"handoff {value!r}: time out of range")
        if len(parts) == 2 and parts[0] not in _WEEKDAYS:
            raise ValueError(f"handoff {value!r}: unknown weekday {parts[0]!r}")
        if len(parts) > 2:
            raise ValueError(f"handoff {value!r}: write 'monday 09:00' or '09:00'")
        return value

    @model_validator(mode="after")
    def _handoff_fits_period(self) -> Rotation:
        """A weekday on a daily rotation, or none on a weekly one, was silently ignored (or Monday)."""
        has_day = len(self.handoff.split()) == 2
        if self.period == "daily" and has_day and "handoff" in self.model_fields_set:
            time_only = self.handoff.split()[-1]
            raise ValueError(f"handoff {self.handoff!r}: a daily rotation hands off every day; write {time_only!r}")
        if self.period == "weekly" and not has_day:
            raise ValueError(
                f"handoff {self.handoff!r}: a weekly rotation needs the day; write 'monday {self.handoff}'"
            )
        return self

    @property
    def handoff_weekday(self) -> int:
        parts = self.handoff.strip().lower().split()
        return _WEEKDAYS.index(parts[0]) if len(parts) == 2 else 0

    @property
    def handoff_time(self) -> time:
        hour, minute = (int(p) for p in self.handoff.strip().split()[-1].split(":"))
        return time(hour, minute)


class Override(Strict):
    user: UserId
    start: datetime
    end: datetime

    @model_validator(mode="after")
    def _ordered(self) -> Override:
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("override start and end need a time zone, e.g. 2026-11-24T09:00:00Z")
        if self.end <= self.start:
            raise ValueError("override end must be after start")
        return self


class OnCall(Strict):
    timezone: str = "UTC"
    rotation: Rotation | None = None
    overrides: list[Override] = []

    @field_validator("timezone")
    @classmethod
    def _tz(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (use an IANA name like Europe/London)") from exc
        return value


class EscalationLevel(Strict):
    name: str
    after: Duration
    notify: list[Target] = Field(min_length=1)


class SeverityPolicy(Strict):
    levels: int | None = Field(default=None, ge=1)  # page only the first N levels
    stop_on: Literal["resolve", "ack"] | None = None


class PagerDutyTarget(Strict):
    routing_key_env: str = "PAGERDUTY_ROUTING_KEY"
    api_url: WebUrl = "https://events.pagerduty.com/v2/enqueue"


def _default_levels() -> list[EscalationLevel]:
    return [EscalationLevel(name="On-call engineer", after=timedelta(0), notify=["oncall"])]


class Escalation(Strict):
    stop_on: Literal["resolve", "ack"] = "resolve"
    levels: list[EscalationLevel] = Field(default_factory=_default_levels, min_length=1)
    severity: dict[Severity, SeverityPolicy] = {}
    # 0 would mean "repeat at once, for ever": refused, rather than silently never repeating.
    repeat_last_every: Interval | None = None
    pagerduty: PagerDutyTarget | None = None

    @field_validator("levels")
    @classmethod
    def _ordered(cls, levels: list[EscalationLevel]) -> list[EscalationLevel]:
        for earlier, later in zip(levels, levels[1:], strict=False):
            if later.after < earlier.after:
                raise ValueError(f"level {later.name!r} fires before {earlier.name!r}: order levels by 'after'")
        return levels


class Reminders(Strict):
    status_update_every: Interval = timedelta(minutes=15)
    status_update_severities: list[Severity] = [Severity.P1, Severity.P2]
    postmortem_due_after: Duration = timedelta(hours=24)
