"""Health checks against real local HTTP servers: concurrency, timeouts, unreachable hosts."""

from __future__ import annotations

import asyncio
import contextlib
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import httpx
import pytest
from aiohttp import web

from bot.config import Service
from bot.health.checker import MAX_BODY, check, check_all, overall
from bot.health.classify import HealthState
from tests.fakes.webhook import FakeServer

TIMEOUT = 0.5
SLOW = 10.0  # a budget no healthy check comes near, even on a loaded machine
TOGETHER = 5.0  # how long a request waits for the others before it answers anyway


class HealthServer(FakeServer):
    """Twenty services' /health endpoints on one server: most fine, some broken, one hanging."""

    def __init__(self) -> None:
        super().__init__()
        self.in_flight = 0
        self.peak = 0  # the most requests in flight at once
        self._all_in = asyncio.Event()  # set once `together` requests are in flight
        self.app.router.add_get("/ok/{n}", self._ok)
        self.app.router.add_get("/hang", self._hang)
        self.app.router.add_get("/drip", self._drip)
        self.app.router.add_get("/fail", self._fail)
        self.app.router.add_get("/redirect", self._redirect)
        self.app.router.add_get("/huge", self._huge)
        self.app.router.add_get("/spring", self._spring)

    async def _ok(self, request: web.Request) -> web.Response:
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        if self.in_flight >= int(request.query.get("together", "0")):
            self._all_in.set()
        try:
            if "together" in request.query:  # answer only once that many are waiting at the same moment
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._all_in.wait(), timeout=TOGETHER)
            await asyncio.sleep(float(request.query.get("delay", "0")))
        finally:
            self.in_flight -= 1
        return web.json_response({"status": "pass"}, content_type="application/health+json")

    async def _hang(self, request: web.Request) -> web.Response:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._release.wait(), timeout=30)
        return web.json_response({"status": "ok"})

    async def _drip(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json", "Content-Length": "1000"})
        await response.prepare(request)
        for _ in range(100):
            if self._release.is_set():
                break
            await response.write(b" ")
            await asyncio.sleep(0.1)
        return response

    async def _fail(self, request: web.Request) -> web.Response:
        body = {"status": "error", "error": {"postgres": {"status": "down", "message": "too many connections"}}}
        return web.json_response(body, status=503)

    async def _redirect(self, request: web.Request) -> web.Response:
        raise web.HTTPFound("/ok/redirected")

    async def _huge(self, request: web.Request) -> web.Response:
        return web.Response(
            status=int(request.query.get("status", "200")),
            body=b'{"status":"ok","pad":"' + b"x" * (MAX_BODY * 4) + b'"}',
            content_type="application/json",
        )

    async def _spring(self, request: web.Request) -> web.Response:
        return web.json_response({"status": "UP", "components": {"db": {"status": "UP"}, "mail": {"status": "DOWN"}}})


@pytest.fixture
async def server() -> AsyncIterator[HealthServer]:
    fake = HealthServer()
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def _svc(url: str, timeout: float = TIMEOUT, **kw: object) -> Service:
    return Service(health_url=url, timeout=timedelta(seconds=timeout), **kw)  # type: ignore[arg-type]


def _closed_port() -> int:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


async def test_twenty_endpoints_with_one_hanging_cost_one_timeout_not_the_sum(
    server: HealthServer, http: httpx.AsyncClient
) -> None:
    # Each healthy endpoint answers once all 18 are waiting at the same moment (or after TOGETHER seconds in
    # vain): checks made one after another never get there. That holds however loaded the machine is, where
    # counting requests in flight over a fixed delay did not.
    services = {f"svc{n:02d}": _svc(f"{server.url}/ok/{n}?together=18", SLOW) for n in range(18)}
    services["stuck"] = _svc(f"{server.url}/hang")
    services["broken"] = _svc(f"{server.url}/fail", SLOW)  # answers at once: only `stuck` needs the short budget

    started = time.perf_counter()
    results = await check_all(http, services)
    took = time.perf_counter() - started

    assert server.peak == 18, f"at most {server.peak} checks at once: checks ran one after another?"
    assert took < TOGETHER, f"took {took:.2f}s: a healthy check waited for the others in vain"
    by_name = {r.service: r for r in results}
    assert [r.service for r in results] == list(services)  # the catalog's order
    assert by_name["stuck"].state is HealthState.UNREACHABLE
    assert by_name["stuck"].reason == "no answer within 0.5 s"
    assert by_name["broken"].state is HealthState.FAILING
    assert [d.name for d in by_name["broken"].failing] == ["postgres"]
    assert sum(r.state is HealthState.HEALTHY for r in results) == 18
    assert all(r.latency is not None and r.latency.total_seconds() < TOGETHER for r in results if r.service != "stuck")
    assert overall(results) is HealthState.UNREACHABLE


class InFlight(httpx.AsyncHTTPTransport):
    """Counts requests to `path` between being sent and being answered (or given up)."""

    def __init__(self, path: str) -> None:
        super().__init__()
        self.path = path
        self.now = self.peak = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        counted = request.url.path == self.path
        self.now += counted
        self.peak = max(self.peak, self.now)
        try:
            return await super().handle_async_request(request)
        finally:
            self.now -= counted


async def test_several_hanging_endpoints_cost_the_longest_timeout(server: HealthServer) -> None:
    services = {
        "a": _svc(f"{server.url}/hang", 0.3),
        "b": _svc(f"{server.url}/hang", 1.0),
        "c": _svc(f"{server.url}/hang", 1.0),
        "ok": _svc(f"{server.url}/ok/1", SLOW),
    }
    hanging = InFlight("/hang")
    async with httpx.AsyncClient(transport=hanging) as http:
        started = time.perf_counter()
        results = await check_all(http, services)
        took = time.perf_counter() - started

    # One after another, each hanging request would be given up before the next is sent: the proof that they
    # ran together is that all three waited at once, which no load can change (a wall-clock bound could fail).
    assert hanging.peak == 3, f"at most {hanging.peak} hanging checks at once: checks ran one after another?"
    assert [r.reason for r in results[:3]] == [f"no answer within {t} s" for t in ("0.3", "1", "1")]
    assert 0.95 <= took < SLOW  # each cut at its own timeout, never waiting for the server (30 s)
    assert [r.state for r in results] == [HealthState.UNREACHABLE] * 3 + [HealthState.HEALTHY]


async def test_a_server_that_drips_bytes_is_cut_off_at_the_timeout(
    server: HealthServer, http: httpx.AsyncClient
) -> None:
    started = time.perf_counter()
    result = await check(http, name="drip", service=_svc(f"{server.url}/drip"))

    assert time.perf_counter() - started < 5.0  # the server drips for 10 s; no single read waits 0.5 s
    assert result.state is HealthState.UNREACHABLE


async def test_connection_refused_is_unreachable(http: httpx.AsyncClient) -> None:
    result = await check(http, name="gone", service=_svc(f"http://127.0.0.1:{_closed_port()}/health"))
    assert result.state is HealthState.UNREACHABLE
    assert result.reason.startswith("connection failed")


async def test_redirects_are_followed(server: HealthServer, http: httpx.AsyncClient) -> None:
    result = await check(http, name="moved", service=_svc(f"{server.url}/redirect"))
    assert result.state is HealthState.HEALTHY and result.http_status == 200


async def test_a_huge_body_is_read_only_up_to_the_limit_and_not_judged_healthy(
    server: HealthServer, http: httpx.AsyncClient
) -> None:
    """Its start says nothing of its end (a `"status":"warn"` after the details): degraded, saying why."""
    result = await check(http, name="huge", service=_svc(f"{server.url}/huge", 5))
    assert result.state is HealthState.DEGRADED and result.http_status == 200
    assert result.reason == "HTTP 200, but a health answer over 256 KB, not read: its status is not known"


async def test_a_huge_body_with_a_failing_http_status_is_failing(server: HealthServer, http: httpx.AsyncClient) -> None:
    result = await check(http, name="huge", service=_svc(f"{server.url}/huge?status=503", 5))
    assert result.state is HealthState.FAILING and result.reason == "HTTP 503"


async def test_a_broken_component_under_up_is_degraded_with_its_name(
    server: HealthServer, http: httpx.AsyncClient
) -> None:
    result = await check(http, name="spring", service=_svc(f"{server.url}/spring"))
    assert result.state is HealthState.DEGRADED
    assert result.summary() == f"spring: degraded · {result.latency_ms} ms · failing: mail"


async def test_a_service_without_health_url_is_unknown_and_costs_nothing(http: httpx.AsyncClient) -> None:
    result = await check(http, name="batch", service=Service())
    assert result.state is HealthState.UNKNOWN
    assert "health_url" in result.reason
    assert overall([result]) is HealthState.UNKNOWN


async def test_a_malformed_url_does_not_raise(http: httpx.AsyncClient) -> None:
    # bot.yml refuses such a URL when it loads; the checker still never raises on one.
    service = Service.model_construct(health_url="htp:/nowhere", timeout=timedelta(seconds=TIMEOUT))
    result = await check(http, name="typo", service=service)
    assert result.state in (HealthState.UNKNOWN, HealthState.UNREACHABLE)
