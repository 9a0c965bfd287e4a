"""`python -m bot check` for escalation: what would make paging fail at 3 a.m."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import BotConfig
from bot.escalation.setup import check
from bot.settings import Settings


def settings(raw: dict[str, Any]) -> Settings:
    return Settings.load(config=BotConfig.model_validate(raw), _env_file=None)


def test_a_sound_config_has_nothing_to_say() -> None:
    raw = {"oncall": {"rotation": {"users": ["U0ALICE", "U0BOB"]}}}
    errors, warnings, notes = check(settings(raw))
    assert (errors, warnings) == ([], [])
    assert notes[0] == "escalation: P1/P2/P3/P4: 1 level (0m), stops on resolve"
    assert notes[1].startswith("on call now: U0")


def test_missing_pagerduty_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PD_KEY_FOR_TEST", raising=False)
    errors, _, _ = check(settings({"escalation": {"pagerduty": {"routing_key_env": "PD_KEY_FOR_TEST"}}}))
    assert errors == [
        "escalation.pagerduty: environment variable PD_KEY_FOR_TEST (the PagerDuty Events v2 routing key) is not set"
    ]
    monkeypatch.setenv("PD_KEY_FOR_TEST", "k")
    assert check(settings({"escalation": {"pagerduty": {"routing_key_env": "PD_KEY_FOR_TEST"}}}))[0] == []


def test_stale_overrides_duplicates_and_impossible_level_counts_are_warnings() -> None:
    raw = {
        "oncall": {
            "rotation": {"users": ["U0ALICE", "U0BOB", "U0ALICE"]},
            "overrides": [{"user": "U0BOB", "start": "2020-01-01T00:00:00Z", "end": "2020-01-02T00:00:00Z"}],
        },
        "escalation": {"severity": {"P1": {"levels": 5}}},
    }
    errors, warnings, _ = check(settings(raw))
    assert errors == []
    assert len(warnings) == 3
    assert warnings[0].startswith("oncall.overrides.0: ended 2020-01-02 00:00 UTC")
    assert "listed twice" in warnings[1]
    assert "escalation.severity.P1.levels is 5 but only 1 level(s) exist" in warnings[2]
