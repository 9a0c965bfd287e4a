"""On-call rotation: hand-offs, DST, overrides, and the per-level view for `/incident oncall`."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.config import Escalation, OnCall
from bot.escalation.oncall import next_handoff, now_and_next, on_call_at, per_level, shifts

USERS = ["U0ALICE", "U0BOB", "U0CAROL"]


def oncall(**rotation: Any) -> OnCall:
    overrides = rotation.pop("overrides", [])
    timezone = rotation.pop("timezone", "Europe/London")
    spec = {"period": "weekly", "handoff": "monday 09:00", "users": USERS, **rotation}
    return OnCall.model_validate({"timezone": timezone, "rotation": spec, "overrides": overrides})


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def test_weekly_rotation_starts_with_the_first_user_at_the_default_start() -> None:
    rota = oncall()
    # 2026-01-05 is a Monday; London is on GMT in January, so 09:00 local = 09:00 UTC.
    assert on_call_at(rota, at("2026-01-05T09:00:00+00:00")) == "U0ALICE"
    assert on_call_at(rota, at("2026-01-12T08:59:59+00:00")) == "U0ALICE"
    assert on_call_at(rota, at("2026-01-12T09:00:00+00:00")) == "U0BOB"
    assert on_call_at(rota, at("2026-01-19T09:00:00+00:00")) == "U0CAROL"
    assert on_call_at(rota, at("2026-01-26T09:00:00+00:00")) == "U0ALICE"
    # Before the start the order runs backwards, so the sequence is continuous.
    assert on_call_at(rota, at("2026-01-05T08:59:00+00:00")) == "U0CAROL"


def test_hand_off_stays_at_nine_local_across_the_dst_change() -> None:
    rota = oncall()
    # British Summer Time starts on Sunday 2026-03-29. The Monday after, 09:00 BST is 08:00 UTC.
    monday = at("2026-03-30T08:00:00+00:00")
    before = on_call_at(rota, monday - timedelta(seconds=1))
    after = on_call_at(rota, monday)
    assert before != after
    assert rota.rotation is not None
    assert next_handoff(rota.rotation, ZoneInfo("Europe/London"), monday - timedelta(hours=1)) == monday
    # And back to GMT on Sunday 2026-10-25: the next Monday hand-off is 09:00 UTC again.
    assert on_call_at(rota, at("2026-10-26T08:59:00+00:00")) != on_call_at(rota, at("2026-10-26T09:00:00+00:00"))


def test_weekly_shift_across_dst_is_not_a_fixed_168_hours() -> None:
    rota = oncall()
    # The shift that contains the spring-forward Sunday is one hour shorter in real time.
    current, following = now_and_next(rota, at("2026-03-25T12:00:00+00:00"))
    assert current.end == at("2026-03-30T08:00:00+00:00")
    assert following is not None and following.end == at("2026-04-06T08:00:00+00:00")
    assert following.end - current.end == timedelta(days=7)
    previous_handoff = at("2026-03-23T09:00:00+00:00")
    assert current.end - previous_handoff == timedelta(days=7) - timedelta(hours=1)


def test_daily_rotation_in_new_york_with_dst() -> None:
    rota = oncall(period="daily", handoff="08:30", timezone="America/New_York", start="2026-03-01T08:30:00-05:00")
    assert on_call_at(rota, at("2026-03-01T13:30:00+00:00")) == "U0ALICE"  # 08:30 EST
    assert on_call_at(rota, at("2026-03-02T13:30:00+00:00")) == "U0BOB"
    # US DST starts 2026-03-08; from then 08:30 EDT is 12:30 UTC.
    days = (datetime(2026, 3, 9) - datetime(2026, 3, 1)).days
    expected = USERS[days % 3]
    assert on_call_at(rota, at("2026-03-09T12:30:00+00:00")) == expected
    assert on_call_at(rota, at("2026-03-09T12:29:59+00:00")) == USERS[(days - 1) % 3]


def test_hand_off_inside_the_spring_gap_happens_when_the_gap_ends() -> None:
    # 01:30 does not exist in London on 2026-03-29: clocks jump from 01:00 GMT to 02:00 BST.
    rota = oncall(period="daily", handoff="01:30", start="2026-03-28T01:30:00+00:00")
    gap_end = at("2026-03-29T01:00:00+00:00")
    assert on_call_at(rota, gap_end - timedelta(seconds=1)) == "U0ALICE"
    assert on_call_at(rota, gap_end) == "U0BOB"


def test_hand_off_inside_the_autumn_fold_happens_at_the_first_occurrence() -> None:
    # 01:30 happens twice in London on 2026-10-25 (BST, then GMT); the hand-off is the first one.
    rota = oncall(period="daily", handoff="01:30", start="2026-10-24T01:30:00+01:00")
    first = at("2026-10-25T00:30:00+00:00")
    assert on_call_at(rota, first - timedelta(seconds=1)) == "U0ALICE"
    assert on_call_at(rota, first) == "U0BOB"
    assert on_call_at(rota, first + timedelta(hours=1)) == "U0BOB"


def test_start_in_the_middle_of_a_week_anchors_on_the_next_hand_off() -> None:
    rota = oncall(start="2026-11-18T12:00:00+00:00")  # a Wednesday
    assert on_call_at(rota, at("2026-11-23T09:00:00+00:00")) == "U0ALICE"  # first Monday after
    assert on_call_at(rota, at("2026-11-23T08:59:00+00:00")) == "U0CAROL"


def test_override_replaces_the_rotation_for_its_window_only() -> None:
    rota = oncall(overrides=[{"user": "U0DAVE", "start": "2026-11-24T09:00:00Z", "end": "2026-11-25T09:00:00Z"}])
    regular = on_call_at(rota, at("2026-11-24T08:59:00+00:00"))
    assert regular != "U0DAVE"
    assert on_call_at(rota, at("2026-11-24T09:00:00+00:00")) == "U0DAVE"
    assert on_call_at(rota, at("2026-11-25T08:59:59+00:00")) == "U0DAVE"
    assert on_call_at(rota, at("2026-11-25T09:00:00+00:00")) == regular


def test_overlapping_overrides_the_later_start_wins() -> None:
    rota = oncall(
        overrides=[
            {"user": "U0DAVE", "start": "2026-11-24T00:00:00Z", "end": "2026-11-27T00:00:00Z"},
            {"user": "U0LEAD", "start": "2026-11-25T00:00:00Z", "end": "2026-11-26T00:00:00Z"},
        ]
    )
    assert on_call_at(rota, at("2026-11-24T12:00:00+00:00")) == "U0DAVE"
    assert on_call_at(rota, at("2026-11-25T12:00:00+00:00")) == "U0LEAD"
    assert on_call_at(rota, at("2026-11-26T12:00:00+00:00")) == "U0DAVE"


def test_overrides_without_rotation() -> None:
    rota = OnCall.model_validate(
        {"overrides": [{"user": "U0DAVE", "start": "2026-11-24T00:00:00Z", "end": "2026-11-25T00:00:00Z"}]}
    )
    assert on_call_at(rota, at("2026-11-24T12:00:00+00:00")) == "U0DAVE"
    assert on_call_at(rota, at("2026-11-25T12:00:00+00:00")) is None
    assert on_call_at(OnCall(), at("2026-11-25T12:00:00+00:00")) is None


def test_shifts_list_override_boundaries_and_hand_offs_in_order() -> None:
    rota = oncall(overrides=[{"user": "U0DAVE", "start": "2026-11-24T09:00:00Z", "end": "2026-11-25T09:00:00Z"}])
    start = at("2026-11-23T12:00:00+00:00")
    first = [s for _, s in zip(range(4), shifts(rota, start), strict=False)]
    regular = on_call_at(rota, start)
    assert [(s.user, s.start, s.end) for s in first[:3]] == [
        (regular, start, at("2026-11-24T09:00:00+00:00")),
        ("U0DAVE", at("2026-11-24T09:00:00+00:00"), at("2026-11-25T09:00:00+00:00")),
        (regular, at("2026-11-25T09:00:00+00:00"), at("2026-11-30T09:00:00+00:00")),
    ]
    assert first[3].user != regular


def test_single_person_rotation_never_hands_off() -> None:
    rota = oncall(users=["U0ALICE"])
    current, following = now_and_next(rota, at("2026-11-23T12:00:00+00:00"))
    assert current.user == "U0ALICE" and current.end is None and following is None


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="aware"):
        on_call_at(oncall(), datetime(2026, 11, 23, 12, 0))


def test_per_level_view_resolves_oncall_and_keeps_fixed_targets() -> None:
    rota = oncall()
    escalation = Escalation.model_validate(
        {
            "levels": [
                {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
                {"name": "Team lead", "after": "15m", "notify": ["U0LEAD", "S0LEADS"]},
            ]
        }
    )
    now = at("2026-11-23T12:00:00+00:00")
    first, second = per_level(escalation, rota, now)
    assert first.now == (on_call_at(rota, now),)
    assert first.next == (on_call_at(rota, at("2026-11-30T09:00:00+00:00")),)
    assert first.next_at == at("2026-11-30T09:00:00+00:00")
    assert first.now != first.next
    assert second.now == second.next == ("U0LEAD", "S0LEADS")
    assert second.next_at is None
    assert second.after == timedelta(minutes=15)
