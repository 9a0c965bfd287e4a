"""Classification of health answers: HTTP status first, then the body's word, then its dependencies."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.health.classify import HealthState, classify, dependencies, state_of_word

H, D, F = HealthState.HEALTHY, HealthState.DEGRADED, HealthState.FAILING


def _c(status: int, body: Any, **kw: Any):
    raw = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return classify(status_code=status, body=raw, **kw)


@pytest.mark.parametrize(
    ("word", "state"),
    [
        ("pass", H),
        ("OK", H),
        ("UP", H),
        ("Healthy", H),
        ("warn", D),
        ("DEGRADED", D),
        ("fail", F),
        ("error", F),
        ("DOWN", F),
        ("unhealthy", F),
        ("OUT_OF_SERVICE", F),
        ("shutting_down", F),
        ("banana", None),
    ],
)
def test_status_words_are_case_insensitive(word: str, state: HealthState | None) -> None:
    assert state_of_word(word) is state


# --- shapes ---------------------------------------------------------------------------------------

IETF_WARN = {
    "status": "warn",
    "version": "1",
    "checks": {
        "postgres:responseTime": [{"componentId": "primary", "status": "pass", "observedValue": 12}],
        "redis:connections": [
            {"componentId": "cache-1", "status": "pass"},
            {"componentId": "cache-2", "status": "warn", "output": "connection pool 95% used"},
        ],
    },
}

SPRING_DOWN = {
    "status": "DOWN",
    "components": {
        "db": {"status": "DOWN", "details": {"error": "org.postgresql.util.PSQLException: Connection refused"}},
        "diskSpace": {"status": "UP", "details": {"total": 100, "free": 50, "threshold": 10, "exists": True}},
        "ping": {"status": "UP"},
    },
}

SPRING_NESTED = {
    "status": "UP",
    "components": {
        "db": {"status": "UP", "components": {"primary": {"status": "UP"}, "replica": {"status": "DOWN"}}},
    },
}

SPRING_2_0 = {"status": "DOWN", "details": {"redis": {"status": "DOWN", "details": {"error": "timeout"}}}}

TERMINUS_ERROR = {
    "status": "error",
    "info": {"database": {"status": "up"}},
    "error": {"redis": {"status": "down", "message": "Could not connect"}},
    "details": {"database": {"status": "up"}, "redis": {"status": "down", "message": "Could not connect"}},
}

TERMINUS_OK = {
    "status": "ok",
    "info": {"database": {"status": "up"}},
    "error": {},
    "details": {"database": {"status": "up"}},
}

PLAIN_SERVICES = {"status": "ok", "services": {"db": "ok", "search": "down", "queue": True}}
PLAIN_LIST = {
    "status": "healthy",
    "checks": [{"name": "db", "status": "healthy"}, {"name": "s3", "status": "unhealthy", "error": "AccessDenied"}],
}


def test_ietf_warn_is_degraded_and_names_the_warning_component() -> None:
    verdict = _c(200, IETF_WARN, content_type="application/health+json")
    assert verdict.state is D
    assert [d.name for d in verdict.failing] == ["redis:connections"]
    assert verdict.failing[0].detail == "connection pool 95% used"


def test_ietf_fail_with_503() -> None:
    body = {"status": "fail", "output": "database unreachable", "checks": {"db:connections": [{"status": "fail"}]}}
    verdict = _c(503, body)
    assert verdict.state is F
    assert verdict.reason == "HTTP 503"
    assert verdict.detail == "database unreachable"
    assert [d.name for d in verdict.failing] == ["db:connections"]


def test_spring_boot_down_names_db_and_ignores_detail_facts() -> None:
    verdict = _c(503, SPRING_DOWN)
    assert verdict.state is F
    names = {d.name: d.state for d in verdict.dependencies}
    assert names == {"db": F, "diskSpace": H, "ping": H}  # no "diskSpace.exists" from the details map
    assert verdict.failing[0].detail.startswith("org.postgresql.util.PSQLException")


def test_spring_boot_nested_component_down_under_an_up_service_is_degraded() -> None:
    verdict = _c(200, SPRING_NESTED)
    assert verdict.state is D
    assert [d.name for d in verdict.failing] == ["db.replica"]


def test_spring_boot_2_0_details_map() -> None:
    verdict = _c(503, SPRING_2_0)
    assert [d.name for d in verdict.failing] == ["redis"]
    assert verdict.failing[0].detail == "timeout"


def test_terminus_error_names_the_broken_indicator() -> None:
    verdict = _c(503, TERMINUS_ERROR)
    assert verdict.state is F
    assert [d.name for d in verdict.failing] == ["redis"]
    assert verdict.failing[0].detail == "Could not connect"


def test_terminus_ok() -> None:
    verdict = _c(200, TERMINUS_OK)
    assert verdict.state is H and not verdict.failing


def test_plain_services_map_with_strings_and_booleans() -> None:
    verdict = _c(200, PLAIN_SERVICES)
    assert verdict.state is D
    assert [d.name for d in verdict.failing] == ["search"]
    assert {d.name for d in verdict.dependencies} == {"db", "search", "queue"}


def test_plain_list_of_checks() -> None:
    verdict = _c(200, PLAIN_LIST)
    assert verdict.state is D
    assert verdict.failing[0].name == "s3" and verdict.failing[0].detail == "AccessDenied"


def test_a_200_whose_body_says_fail_is_failing() -> None:
    assert _c(200, {"status": "fail"}).state is F
    assert _c(200, {"status": "DOWN"}).reason == "status DOWN"


def test_http_status_beats_a_cheerful_body() -> None:
    assert _c(503, {"status": "UP"}).state is F
    assert _c(500, "").state is F
    assert _c(404, "Not Found").reason == "HTTP 404"


@pytest.mark.parametrize(("body", "state"), [("OK", H), ("", H), ("healthy\n", H), ("unhealthy", F), ("degraded", D)])
def test_plain_text_bodies(body: str, state: HealthState) -> None:
    assert _c(200, body, content_type="text/plain").state is state


def test_an_unknown_word_keeps_the_http_verdict_and_says_so() -> None:
    verdict = _c(200, {"status": "purple"})
    assert verdict.state is H
    assert "purple" in verdict.reason


def test_expected_status_is_honoured() -> None:
    assert _c(204, "", expected_status=204).state is H
    assert _c(200, {"status": "ok"}, expected_status=204).state is F
    assert "expected 204" in _c(200, "", expected_status=204).reason


def test_html_and_garbage_do_not_crash() -> None:
    assert _c(200, "<html><body>It works</body></html>").state is H
    assert _c(200, b"\xff\xfe\x00garbage").state is H
    assert _c(502, "{not json").state is F
    assert _c(200, [1, 2, 3]).state is H


def test_the_worst_verdict_wins_when_a_name_repeats() -> None:
    deps = dependencies({"info": {"redis": {"status": "up"}}, "error": {"redis": {"status": "down"}}})
    assert [(d.name, d.state) for d in deps] == [("redis", F)]


def test_deeply_nested_bodies_stop_at_a_depth() -> None:
    node: dict[str, Any] = {"status": "DOWN"}
    for _ in range(50):
        node = {"status": "UP", "components": {"x": node}}
    verdict = _c(200, node)
    assert verdict.state in (H, D)  # no recursion error, bounded depth


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=30,
)


@given(status=st.integers(100, 599), body=json_values)
def test_any_json_body_classifies_without_raising(status: int, body: Any) -> None:
    verdict = classify(status_code=status, body=json.dumps(body))
    assert verdict.state in (H, D, F)
    if not 200 <= status < 400:
        assert verdict.state is F
