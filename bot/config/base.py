"""The building blocks of `bot.yml`'s schema: strict models, durations, severities, Slack references."""

from __future__ import annotations

import re
from datetime import timedelta
from enum import StrEnum
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_LONGEST = timedelta(days=3650)


def parse_duration(value: Any) -> timedelta:
    """`30s`, `15m`, `1h`, `1d`, `1h30m`; a bare number is refused so `15` is never 15 seconds by accident."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool) or not isinstance(value, str):
        raise ValueError(f"write a duration such as 30s, 15m, 1h or 1d (got {value!r})")
    text = value.strip().lower().replace(" ", "")
    if not text:
        raise ValueError("empty duration: write 30s, 15m, 1h or 1d")
    pos, total = 0, 0.0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text):
        raise ValueError(f"invalid duration {value!r}: write 30s, 15m, 1h or 1d")
    if total > _LONGEST.total_seconds():
        # Added to "now" it would overflow a datetime when an incident is declared, not at start.
        raise ValueError(f"duration {value!r} is too long (at most {_LONGEST.days}d)")
    return timedelta(seconds=total)


Duration = Annotated[timedelta, BeforeValidator(parse_duration)]


def _longer_than_zero(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than 0 (e.g. 30s, 15m, 1h)")
    return value


# How often, or how long to wait: 0 would remind (or probe) in a loop, or time out every call at once.
Interval = Annotated[timedelta, BeforeValidator(parse_duration), AfterValidator(_longer_than_zero)]


def _web_url(value: str) -> str:
    value = value.strip()
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        example = value if "://" in value else f"https://{value}"
        raise ValueError(f"{value!r} is not a full URL: write it with http:// or https:// (e.g. {example!r})")
    return value


# An address the bot calls (a health endpoint, a deploy webhook): without a scheme it is unreachable at
# run time, so /status would call a healthy service down; refused when bot.yml loads instead.
WebUrl = Annotated[str, AfterValidator(_web_url)]

_SLACK_ID = {
    "user": re.compile(r"^[UW][A-Z0-9]{2,}$"),
    "group": re.compile(r"^S[A-Z0-9]{2,}$"),
    "channel": re.compile(r"^[CG][A-Z0-9]{2,}$"),
}


def is_user_id(value: str | None) -> bool:
    """A Slack user (U…/W…), as opposed to a system actor such as an alert source."""
    return value is not None and _SLACK_ID["user"].match(value) is not None


def _slack_ref(*kinds: str, prefix: str, extra: str | None = None, expected: str) -> BeforeValidator:
    """A validator for a Slack ID of the given kinds, a `@handle`/`#name`, or one literal word."""

    def check(raw: Any) -> str:
        value = str(raw).strip()
        if value == extra or value.startswith(prefix) or any(_SLACK_ID[k].match(value) for k in kinds):
            return value
        raise ValueError(f"{value!r} is not {expected}")

    return BeforeValidator(check)


Target = Annotated[
    str,
    _slack_ref(
        "user", "group", prefix="@", extra="oncall", expected="a Slack user (U…), user group (S…), @handle or 'oncall'"
    ),
]
UserId = Annotated[str, _slack_ref("user", prefix="@", expected="a Slack user ID (U…) or @handle")]
ChannelRef = Annotated[str, _slack_ref("channel", prefix="#", expected="a Slack channel ID (C…) or #name")]
Principal = Annotated[str, _slack_ref("user", "group", prefix="@", expected="a Slack user (U…) or user group (S…)")]


class Severity(StrEnum):
    P1 = "P1"
    P2 = "P2"
    P3 = "P3"
    P4 = "P4"

    @property
    def label(self) -> str:
        return {"P1": "critical", "P2": "high", "P3": "medium", "P4": "low"}[self.value]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
