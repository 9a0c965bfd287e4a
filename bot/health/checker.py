"""Checking the services' health endpoints, all at once.

Every check runs concurrently on the one shared `httpx.AsyncClient`, each inside its own
deadline (`asyncio.timeout`, not only httpx's per-phase timeouts, so a server that drips one
byte a second cannot hold a check past its budget). One hanging endpoint therefore costs at
most its own timeout, never the sum of them. A check never raises: whatever goes wrong becomes
an `unreachable` or `failing` result the on-call engineer can read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import httpx

from bot.clock import Clock, SystemClock
from bot.config import Service
from bot.health.classify import Dependency, HealthState, classify, failing

# Bodies bigger than this are not read to the end: a health endpoint that streams megabytes is itself
# suspect, and a status word past the cut (`"status":"warn"` after the details) would be missed, so a 2xx
# answer that big is reported degraded with the reason, never judged healthy from its first part.
MAX_BODY = 256 * 1024


@dataclass(frozen=True)
class HealthResult:
    service: str
    state: HealthState
    url: str | None = None  # as it may be shown (`shown_url`): never the password or token in it
    http_status: int | None = None
    latency: timedelta | None = None
    reason: str = ""
    detail: str = ""
    status_word: str | None = None
    dependencies: tuple[Dependency, ...] = field(default_factory=tuple)
    checked_at: datetime | None = None

    @property
    def failing(self) -> list[Dependency]:
        return failing(self.dependencies)

    @property
    def latency_ms(self) -> int | None:
        return None if self.latency is None else round(self.latency.total_seconds() * 1000)

    @property
    def ok(self) -> bool:
        return self.state in (HealthState.HEALTHY, HealthState.DEGRADED)

    def summary(self) -> str:
        """One plain line (no markup) for logs and timeline events."""
        parts = [f"{self.service}: {self.state.value}"]
        if self.latency_ms is not None:
            parts.append(f"{self.latency_ms} ms")
        if self.failing:
            parts.append("failing: " + ", ".join(d.name for d in self.failing))
        elif self.reason and self.state is not HealthState.HEALTHY:
            parts.append(self.reason)
        return " · ".join(parts)


async def check(
    http: httpx.AsyncClient,
    *,
    name: str,
    service: Service,
    clock: Clock | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> HealthResult:
    """One health check within the service's timeout."""
    clock = clock or SystemClock()
    checked_at = clock.now()
    if not service.health_url:
        return HealthResult(name, HealthState.UNKNOWN, reason="no health_url in bot.yml", checked_at=checked_at)
    url = service.health_url
    shown = shown_url(url)
    budget = service.timeout.total_seconds()
    started = timer()

    def elapsed() -> timedelta:
        return timedelta(seconds=max(0.0, timer() - started))

    def unreachable(reason: str) -> HealthResult:
        return HealthResult(
            name, HealthState.UNREACHABLE, shown, latency=elapsed(), reason=reason, checked_at=checked_at
        )

    try:
        async with asyncio.timeout(budget):
            status, body, content_type, moved_to, cut = await _fetch(http, url, budget)
    except (TimeoutError, httpx.TimeoutException):
        return unreachable(f"no answer within {_seconds(budget)}")
    except httpx.ConnectError as exc:
        return unreachable(f"connection failed: {_short(exc)}")
    except httpx.InvalidURL as exc:
        return HealthResult(name, HealthState.UNKNOWN, shown, reason=f"bad health_url: {exc}", checked_at=checked_at)
    except (httpx.HTTPError, OSError) as exc:
        return unreachable(f"{type(exc).__name__}: {_short(exc)}")
    latency = elapsed()
    judged = b"" if cut else body  # the start of a body says nothing of what its end says
    verdict = classify(
        status_code=status, body=judged, content_type=content_type, expected_status=service.expected_status
    )
    if moved_to is not None and verdict.status_word is None and _web_page(body, content_type):
        reason = f"redirected to {shown_url(moved_to)}, a web page, not a health answer (a login page?)"
        return HealthResult(name, HealthState.UNKNOWN, shown, status, latency, reason, checked_at=checked_at)
    if cut and verdict.state is HealthState.HEALTHY:  # only the HTTP status was judged: not enough
        reason = f"HTTP {status}, but a health answer over {MAX_BODY // 1024} KB, not read: its status is not known"
        return HealthResult(name, HealthState.DEGRADED, shown, status, latency, reason, checked_at=checked_at)
    return HealthResult(
        service=name,
        state=verdict.state,
        url=shown,
        http_status=status,
        latency=latency,
        reason=verdict.reason,
        detail=verdict.detail,
        status_word=verdict.status_word,
        dependencies=verdict.dependencies,
        checked_at=checked_at,
    )


async def check_all(
    http: httpx.AsyncClient,
    services: Mapping[str, Service],
    *,
    only: Sequence[str] | None = None,
    clock: Clock | None = None,
    timer: Callable[[], float] = time.perf_counter,
) -> list[HealthResult]:
    """Check the services concurrently; results in the catalog's order (or `only`'s)."""
    names = list(only) if only is not None else list(services)
    results = await asyncio.gather(
        *(check(http, name=name, service=services[name], clock=clock, timer=timer) for name in names)
    )
    return list(results)


def overall(results: Sequence[HealthResult]) -> HealthState:
    """The worst state among the checked services (unknown ones do not count)."""
    judged = [r.state for r in results if r.state is not HealthState.UNKNOWN]
    return max(judged, key=lambda s: s.rank, default=HealthState.UNKNOWN)


def _web_page(body: bytes, content_type: str) -> bool:
    return "html" in content_type.lower() or body.lstrip()[:1] == b"<"


async def _fetch(http: httpx.AsyncClient, url: str, budget: float) -> tuple[int, bytes, str, str | None, bool]:
    """Status, body (up to MAX_BODY), content type, where it was redirected to (None when it was not),
    and whether the body was longer than MAX_BODY (then cut)."""
    headers = {"Accept": "application/health+json, application/json;q=0.9, */*;q=0.5"}
    async with http.stream(
        "GET", url, headers=headers, timeout=httpx.Timeout(budget), follow_redirects=True
    ) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            chunks.append(chunk)
            size += len(chunk)
            if size > MAX_BODY:
                break
        moved_to = str(response.url) if response.history else None
        body = b"".join(chunks)
        return (
            response.status_code,
            body[:MAX_BODY],
            response.headers.get("content-type", ""),
            moved_to,
            size > MAX_BODY,
        )


def shown_url(url: str) -> str:
    """A health URL as /status may show it: credentials (`user:pass@`) and query values masked,
    since health endpoints are often protected by exactly those, and /status posts to a whole channel."""
    try:
        parts = urlsplit(url)
        host = parts.netloc.rpartition("@")[2]
        netloc = f"***@{host}" if "@" in parts.netloc else host
        pairs = parse_qsl(parts.query, keep_blank_values=True)
    except ValueError:
        return "(unreadable URL)"
    query = "&".join(f"{key}=***" for key, _ in pairs) if pairs else ("***" if parts.query else "")
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _short(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return text if len(text) <= 160 else text[:159] + "…"
