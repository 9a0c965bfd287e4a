"""Turning a health endpoint's answer into healthy / degraded / failing.

Pure functions, so every body shape is tested without a server. The HTTP status decides first
(a 503 is failing whatever the body says); a 2xx body may still say `fail` or `warn`, and its
dependency map names what is broken. Shapes understood:

- IETF draft `application/health+json`: `{"status": "pass|warn|fail", "checks": {"db:responseTime":
  [{"componentId": ..., "status": "fail", "output": ...}]}}`
- Spring Boot Actuator: `{"status": "UP|DOWN|OUT_OF_SERVICE|UNKNOWN", "components": {"db": {"status":
  "DOWN", "details": {...}, "components": {...}}}}` (Boot 2.0 used `details` for the map)
- NestJS Terminus: `{"status": "ok|error|shutting_down", "info": {...}, "error": {"redis": {"status":
  "down", "message": ...}}, "details": {...}}`
- plain: `{"status": "ok", "services"|"checks"|"components"|"dependencies": {"db": "ok" | {"status": ...}
  | true}}`, or a list of `{"name": ..., "status": ...}`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class HealthState(StrEnum):
    HEALTHY = "healthy"
    DEGRADED = "degraded"
    FAILING = "failing"
    UNREACHABLE = "unreachable"
    UNKNOWN = "unknown"  # no health_url configured, or nothing to judge by

    @property
    def emoji(self) -> str:
        return {
            "healthy": "🟢",
            "degraded": "🟡",
            "failing": "🔴",
            "unreachable": "⚫",
            "unknown": "⚪",
        }[self.value]

    @property
    def rank(self) -> int:
        """Badness, for sorting and for combining a top-level word with its dependencies."""
        return {"healthy": 0, "unknown": 1, "degraded": 2, "failing": 3, "unreachable": 4}[self.value]


_WORDS: dict[str, HealthState] = {
    # healthy
    "pass": HealthState.HEALTHY,
    "ok": HealthState.HEALTHY,
    "up": HealthState.HEALTHY,
    "healthy": HealthState.HEALTHY,
    "green": HealthState.HEALTHY,
    "operational": HealthState.HEALTHY,
    "available": HealthState.HEALTHY,
    "success": HealthState.HEALTHY,
    # degraded
    "warn": HealthState.DEGRADED,
    "warning": HealthState.DEGRADED,
    "degraded": HealthState.DEGRADED,
    "yellow": HealthState.DEGRADED,
    "partial": HealthState.DEGRADED,
    # failing
    "fail": HealthState.FAILING,
    "failed": HealthState.FAILING,
    "failure": HealthState.FAILING,
    "error": HealthState.FAILING,
    "down": HealthState.FAILING,
    "unhealthy": HealthState.FAILING,
    "red": HealthState.FAILING,
    "critical": HealthState.FAILING,
    "out_of_service": HealthState.FAILING,
    "shutting_down": HealthState.FAILING,
    "unavailable": HealthState.FAILING,
}

# Keys under which bodies keep their dependency map, in the order they are looked at.
_DEPENDENCY_KEYS = ("checks", "components", "services", "dependencies", "details", "error", "info")
# Keys that carry a human explanation of a dependency's state.
_DETAIL_KEYS = ("output", "message", "error", "reason", "detail", "description")
_MAX_DEPTH = 4
_MAX_DETAIL = 200


def state_of_word(word: Any) -> HealthState | None:
    """The state a status word stands for (case-insensitive); None for words nobody agreed on."""
    if isinstance(word, bool):
        return HealthState.HEALTHY if word else HealthState.FAILING
    if not isinstance(word, str):
        return None
    return _WORDS.get(word.strip().lower().replace("-", "_").replace(" ", "_"))


@dataclass(frozen=True)
class Dependency:
    name: str
    state: HealthState
    detail: str = ""


@dataclass(frozen=True)
class Classification:
    state: HealthState
    reason: str = ""  # one short line: "HTTP 503", "status DOWN", "db failing"
    status_word: str | None = None
    detail: str = ""  # the body's own explanation (`output`, `message`, `error`), when it gives one
    dependencies: tuple[Dependency, ...] = field(default_factory=tuple)

    @property
    def failing(self) -> list[Dependency]:
        return failing(self.dependencies)


def failing(dependencies: Iterable[Dependency]) -> list[Dependency]:
    """Dependencies that are not healthy, worst first: what the on-call engineer looks at."""
    bad = [d for d in dependencies if d.state in (HealthState.FAILING, HealthState.DEGRADED)]
    return sorted(bad, key=lambda d: -d.state.rank)


def classify(
    *,
    status_code: int,
    body: bytes | str | Any = b"",
    content_type: str = "",
    expected_status: int | None = None,
) -> Classification:
    """Judge one answer: HTTP status first, then the body's status word and its dependencies."""
    data = parse_body(body, content_type=content_type)
    word, word_state = _top_status(data)
    deps = tuple(dependencies(data))
    detail = _body_detail(data)
    worst_dep = max((d.state for d in deps), key=lambda s: s.rank, default=None)

    def result(state: HealthState, reason: str) -> Classification:
        return Classification(state, reason, word, detail, deps)

    http_ok = status_code == expected_status if expected_status is not None else 200 <= status_code < 400
    if not http_ok:
        expected = f" (expected {expected_status})" if expected_status is not None else ""
        return result(HealthState.FAILING, f"HTTP {status_code}{expected}")
    if word_state is not None and word_state is not HealthState.HEALTHY:
        return result(word_state, f"status {word}")
    if worst_dep in (HealthState.FAILING, HealthState.DEGRADED):
        # The service says it is fine but names a broken dependency: it works, partly.
        names = ", ".join(d.name for d in deps if d.state is worst_dep)
        return result(HealthState.DEGRADED, f"{names} {worst_dep.value}")
    if word is not None and word_state is None:
        return result(HealthState.HEALTHY, f"HTTP {status_code}, unrecognised status {word!r}")
    return result(HealthState.HEALTHY, f"HTTP {status_code}")


def parse_body(body: bytes | str | Any, *, content_type: str = "") -> Any:
    """JSON when it is JSON (whatever the content type claims), otherwise the stripped text."""
    if isinstance(body, (bytes, bytearray)):
        text = bytes(body).decode("utf-8", errors="replace")
    elif isinstance(body, str):
        text = body
    else:
        return body
    text = text.strip()
    if not text:
        return None
    if text[0] in "{[" or "json" in content_type.lower():
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _top_status(data: Any) -> tuple[str | None, HealthState | None]:
    if isinstance(data, Mapping):
        for key in ("status", "state", "health", "healthy"):
            if key in data:
                value = data[key]
                if isinstance(value, Mapping):  # {"status": {"code": "UP"}} (Spring Boot 1.x style)
                    value = value.get("code", value.get("status"))
                if isinstance(value, (str, bool)):
                    return str(value), state_of_word(value)
        return None, None
    if isinstance(data, str) and len(data) <= 40:
        # Plain-text bodies such as "OK" or "unhealthy".
        return data, state_of_word(data)
    return None, None


def dependencies(data: Any) -> list[Dependency]:
    """Every named dependency in the body with its state, nested ones as `db.primary`."""
    if not isinstance(data, Mapping):
        return []
    found: dict[str, Dependency] = {}
    for key in _DEPENDENCY_KEYS:
        if key in data:
            _collect(data[key], prefix="", into=found, depth=0, from_key=key)
    return sorted(found.values(), key=lambda d: (-d.state.rank, d.name))


def _collect(node: Any, *, prefix: str, into: dict[str, Dependency], depth: int, from_key: str) -> None:
    if depth > _MAX_DEPTH:
        return
    if isinstance(node, Mapping):
        for name, value in node.items():
            _collect_one(str(name), value, prefix=prefix, into=into, depth=depth, from_key=from_key)
    elif isinstance(node, list):
        for item in node:
            if isinstance(item, Mapping):
                name = item.get("name") or item.get("componentId") or item.get("component") or item.get("id")
                if name is not None:
                    _collect_one(str(name), item, prefix=prefix, into=into, depth=depth, from_key=from_key)


def _collect_one(name: str, value: Any, *, prefix: str, into: dict[str, Dependency], depth: int, from_key: str) -> None:
    full = f"{prefix}{name}"
    if isinstance(value, list):
        # IETF: "db:responseTime": [{"componentId": "primary", "status": "warn"}, ...] -> worst entry.
        entries = [v for v in value if isinstance(v, Mapping)]
        states = [(state_of_word(v.get("status")), v) for v in entries]
        judged = [(s, v) for s, v in states if s is not None]
        if judged:
            worst, entry = max(judged, key=lambda sv: sv[0].rank)
            _put(into, Dependency(full, worst, _detail(entry)))
        return
    if isinstance(value, (str, bool)):
        # `{"services": {"db": "ok", "cache": false}}`; inside a `details` map strings and booleans are
        # facts (`"exists": true`, `"database": "PostgreSQL"`), not verdicts.
        if from_key != "details" or depth == 0:
            verdict = state_of_word(value)
            if verdict is not None and (depth == 0 or not isinstance(value, bool)):
                _put(into, Dependency(full, verdict))
        return
    if not isinstance(value, Mapping):
        return
    word = value.get("status", value.get("state", value.get("healthy")))
    state = state_of_word(word)
    if state is None and from_key == "error":
        state = HealthState.FAILING  # Terminus puts broken indicators under "error"
    if state is not None:
        _put(into, Dependency(full, state, _detail(value)))
    for key in ("components", "checks", "details"):
        nested = value.get(key)
        if isinstance(nested, (Mapping, list)):
            _collect(nested, prefix=f"{full}.", into=into, depth=depth + 1, from_key=key)


def _put(into: dict[str, Dependency], dep: Dependency) -> None:
    """Keep the worst verdict when the same name appears twice (Terminus repeats `error` in `details`)."""
    old = into.get(dep.name)
    if old is None or dep.state.rank > old.state.rank or (dep.state == old.state and not old.detail):
        into[dep.name] = dep


def _body_detail(data: Any) -> str:
    if isinstance(data, Mapping):
        return _detail(data)
    if isinstance(data, str):
        return _clip(data)
    return ""


def _detail(entry: Mapping[str, Any]) -> str:
    """The entry's own explanation, else the one in its `details` map."""
    for source in (entry, entry.get("details")):
        if isinstance(source, Mapping):
            for key in _DETAIL_KEYS:
                value = source.get(key)
                if isinstance(value, str) and value.strip():
                    return _clip(value.strip())
    return ""


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_DETAIL else text[: _MAX_DETAIL - 1] + "…"
