"""Planning levels from bot.yml: delays, per-severity overrides, stop_on, repeats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import Escalation
from bot.escalation import policy

DECLARED = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


def escalation(**extra: Any) -> Escalation:
    return Escalation.model_validate(
        {
            "levels": [
                {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
                {"name": "Team lead", "after": "15m", "notify": ["U0LEAD"]},
                {"name": "CTO", "after": "30m", "notify": ["U0CTO", "S0EXEC"]},
            ],
            "severity": {"P3": {"levels": 1}, "P4": {"levels": 1, "stop_on": "ack"}},
            **extra,
        }
    )


def test_p1_plans_every_level_from_the_declaration_time() -> None:
    planned = policy.plan(escalation(), severity="P1", declared_at=DECLARED)
    assert [(p.level, p.name, p.due_at - DECLARED, p.notify) for p in planned] == [
        (1, "On-call engineer", timedelta(0), ("oncall",)),
        (2, "Team lead", timedelta(minutes=15), ("U0LEAD",)),
        (3, "CTO", timedelta(minutes=30), ("U0CTO", "S0EXEC")),
    ]
    assert all(p.repeat == 0 for p in planned)


@pytest.mark.parametrize(("severity", "levels"), [("P1", 3), ("P2", 3), ("P3", 1), ("P4", 1)])
def test_severity_overrides_limit_the_levels(severity: str, levels: int) -> None:
    assert len(policy.plan(escalation(), severity=severity, declared_at=DECLARED)) == levels
    assert policy.level_count(escalation(), severity) == levels


def test_a_severity_override_larger_than_the_policy_pages_what_exists() -> None:
    esc = escalation(severity={"P1": {"levels": 9}})
    assert policy.level_count(esc, "P1") == 3


def test_stop_on_defaults_to_resolve_and_can_be_set_per_severity() -> None:
    assert policy.stop_on(escalation(), "P1") == "resolve"
    assert policy.stop_on(escalation(), "P4") == "ack"
    assert policy.stop_on(escalation(stop_on="ack"), "P2") == "ack"


def test_repeat_follows_only_the_last_level() -> None:
    esc = escalation(repeat_last_every="10m")
    assert policy.next_repeat(esc, severity="P1", level=2, repeat=0, due_at=DECLARED) is None
    third = DECLARED + timedelta(minutes=30)
    following = policy.next_repeat(esc, severity="P1", level=3, repeat=0, due_at=third)
    assert following is not None
    assert (following.level, following.repeat, following.due_at) == (3, 1, third + timedelta(minutes=10))
    # For P3 the last level is level 1.
    p3 = policy.next_repeat(esc, severity="P3", level=1, repeat=4, due_at=DECLARED)
    assert p3 is not None and (p3.level, p3.repeat) == (1, 5)


def test_no_repeat_without_repeat_last_every() -> None:
    assert policy.next_repeat(escalation(), severity="P1", level=3, repeat=0, due_at=DECLARED) is None


def test_naive_declaration_time_is_refused() -> None:
    with pytest.raises(ValueError, match="timezone"):
        policy.plan(escalation(), severity="P1", declared_at=datetime(2026, 11, 20, 9, 0))


def test_describe_for_help_texts() -> None:
    assert policy.describe(escalation(), "P1") == "3 levels (0m, 15m, 30m), stops on resolve"
    assert policy.describe(escalation(repeat_last_every="10m"), "P4") == (
        "1 level (0m), stops on ack, last level repeats every 10m"
    )


@pytest.mark.parametrize(
    ("delta", "text"),
    [(timedelta(0), "0m"), (timedelta(seconds=90), "1m30s"), (timedelta(hours=1), "1h"), (timedelta(days=1), "24h")],
)
def test_short_duration(delta: timedelta, text: str) -> None:
    assert policy.short_duration(delta) == text


def test_levels_out_of_order_are_a_config_error() -> None:
    with pytest.raises(ValueError, match="order levels"):
        Escalation.model_validate(
            {
                "levels": [
                    {"name": "a", "after": "15m", "notify": ["oncall"]},
                    {"name": "b", "after": "5m", "notify": ["oncall"]},
                ]
            }
        )


@pytest.mark.parametrize(
    ("since_ack", "now", "stopped_under"),
    [
        (["P1"], "P2", "P1"),  # acked as a P1 that stops on ack, lowered: stays stopped
        (["P1", "P3"], "P2", "P1"),  # ... even when raised back part of the way
        (["P2"], "P1", "P1"),  # acked as a P2, raised to a P1 that stops on ack: the ack exists
        (["P2", "P1"], "P2", "P1"),  # ... and lowered back again: P1's stop holds
        (["P2"], "P3", None),  # no severity since the ack stops on ack: the ack stops nothing
    ],
)
def test_an_ack_under_a_stop_on_ack_severity_holds_at_every_less_urgent_one(
    since_ack: list[str], now: str, stopped_under: str | None
) -> None:
    rules = escalation(severity={"P1": {"stop_on": "ack"}})
    assert policy.stopped_by_ack(rules, severity=now, since_ack=since_ack) == stopped_under


def test_only_a_more_urgent_severity_that_pages_until_resolve_lifts_an_acks_stop() -> None:
    rules = escalation(severity={"P2": {"stop_on": "ack"}})
    assert policy.stopped_by_ack(rules, severity="P1", since_ack=["P2"]) is None
    assert policy.stopped_by_ack(rules, severity="P3", since_ack=["P2", "P1"]) == "P2"
