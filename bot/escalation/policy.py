"""The escalation rules of bot.yml turned into planned pages. Pure: no database, no clock.

Every level's due time is measured from the declaration (`declared_at + after`), never from the
moment the plan is made, so re-planning after a restart or a severity change gives the same times.
A repeat of the last level (`repeat_last_every`) is planned one at a time, when the previous one
is sent, because "until stopped" has no last row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from bot.config import Escalation, Severity

StopOn = Literal["resolve", "ack"]


@dataclass(frozen=True)
class PlannedPage:
    level: int  # 1-based
    repeat: int  # 0: the level itself; n: n-th repeat of the last level
    name: str
    due_at: datetime
    notify: tuple[str, ...]


def stop_on(escalation: Escalation, severity: Severity | str) -> StopOn:
    """`resolve` or `ack` for this severity (a per-severity entry wins over the policy's default)."""
    override = escalation.severity.get(Severity(severity))
    if override is not None and override.stop_on is not None:
        return override.stop_on
    return escalation.stop_on


def stopped_by_ack(
    escalation: Escalation, *, severity: Severity | str, since_ack: Sequence[Severity | str]
) -> Severity | None:
    """The severity whose `stop_on: ack` still stops an acknowledged incident now at `severity`, or None.

    `since_ack`: every severity the incident has had from its acknowledgement on. The ack stops
    escalation under any of them that stops on ack (an ack under P2, then raised to a P1 that stops
    on ack, is stopped: the ack exists). The stop then holds at that severity and every less urgent
    one: lowering an acknowledged P1 to a P2 that pages until resolve says "less urgent, in hand"
    and must not wake the levels the ack stopped or that were not due yet. Only a severity more
    urgent than every one that stopped it, and itself paging until resolve, pages again.
    """
    current = Severity(severity)
    if stop_on(escalation, current) == "ack":
        return current
    for earlier in sorted({Severity(s) for s in since_ack}, key=urgency):
        if stop_on(escalation, earlier) == "ack" and urgency(earlier) <= urgency(current):
            return earlier
    return None


def urgency(severity: Severity) -> int:
    """0 for P1, the most urgent; larger is less urgent."""
    return list(Severity).index(severity)


def level_count(escalation: Escalation, severity: Severity | str) -> int:
    """How many levels this severity pages (`severity: {P3: {levels: 1}}` stops after level 1)."""
    override = escalation.severity.get(Severity(severity))
    total = len(escalation.levels)
    if override is not None and override.levels is not None:
        return min(override.levels, total)
    return total


def plan(escalation: Escalation, *, severity: Severity | str, declared_at: datetime) -> list[PlannedPage]:
    """The levels this severity pages, with their due times; repeats are not included."""
    if declared_at.tzinfo is None:
        raise ValueError("declared_at must be timezone-aware")
    count = level_count(escalation, severity)
    return [
        PlannedPage(
            level=number,
            repeat=0,
            name=level.name,
            due_at=declared_at + level.after,
            notify=tuple(level.notify),
        )
        for number, level in enumerate(escalation.levels[:count], start=1)
    ]


def next_repeat(
    escalation: Escalation,
    *,
    severity: Severity | str,
    level: int,
    repeat: int,
    due_at: datetime,
    sent_at: datetime | None = None,
) -> PlannedPage | None:
    """The repeat that follows a sent page, if the policy repeats and this page is the last level.

    It is due `repeat_last_every` after the page was due; if the page went out so late (the bot was
    down) that this has passed, `repeat_last_every` after it went out: else the same person would
    get the late page and its repeat in the same second.
    """
    every = escalation.repeat_last_every
    if every is None or every <= timedelta(0):
        return None
    last = level_count(escalation, severity)
    if level != last:
        return None
    spec = escalation.levels[last - 1]
    due = due_at + every
    if sent_at is not None and due <= sent_at:
        due = sent_at + every
    return PlannedPage(level=last, repeat=repeat + 1, name=spec.name, due_at=due, notify=tuple(spec.notify))


def describe(escalation: Escalation, severity: Severity | str) -> str:
    """One line for help texts: `3 levels (0m, 15m, 30m), stops on resolve`."""
    count = level_count(escalation, severity)
    offsets = ", ".join(short_duration(level.after) for level in escalation.levels[:count])
    plural = "level" if count == 1 else "levels"
    text = f"{count} {plural} ({offsets}), stops on {stop_on(escalation, severity)}"
    if escalation.repeat_last_every is not None:
        text += f", last level repeats every {short_duration(escalation.repeat_last_every)}"
    return text


def describe_all(escalation: Escalation) -> list[str]:
    """`describe` for every severity, severities that escalate alike on one line: `P1/P2: 3 levels (...)`."""
    groups: dict[str, list[str]] = {}
    for severity in Severity:
        groups.setdefault(describe(escalation, severity), []).append(severity.value)
    return [f"{'/'.join(severities)}: {text}" for text, severities in groups.items()]


def short_duration(delta: timedelta) -> str:
    """As written in bot.yml: `0m`, `15m`, `1h`, `90s`, `1h30m`."""
    seconds = int(delta.total_seconds())
    if seconds == 0:
        return "0m"
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{hours}h" if hours else "", f"{minutes}m" if minutes else "", f"{secs}s" if secs else ""]
    return "".join(parts)
