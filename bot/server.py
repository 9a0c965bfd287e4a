"""The HTTP server: Slack at POST /slack/events, and the bot's own endpoints.

In Socket Mode Slack traffic arrives over the websocket, but this server still runs for
/health, /metrics, the alert webhooks and the web dashboard (bot/web). Every request gets a request id (the caller's
`X-Request-ID` when it sends a sane one), echoed in the response and stamped on every log line
the request causes.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import logs
from bot.clock import Clock
from bot.deps import Deps, HealthProbe
from bot.exceptions import ChatError
from bot.observability import request_started
from bot.slack.api import call, data
from bot.slack.front import FrontDoor, unreadable
from bot.web import add_routes as add_dashboard

log = logging.getLogger(__name__)

HEALTH_TYPE = "application/health+json"
SLACK_AUTH_TTL = 60.0  # seconds an auth.test answer is reused by /health
SLACK_AUTH_TIMEOUT = 5.0
# Slack errors that mean the token itself is bad: the bot cannot work until someone fixes it.
_FATAL_AUTH = {"invalid_auth", "not_authed", "token_revoked", "token_expired", "account_inactive", "no_permission"}
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class SlackAuthProbe:
    """`auth.test`, cached for a minute so a tight health-check loop does not spend Slack's rate limit."""

    def __init__(self, client: AsyncWebClient, *, clock: Clock, ttl: float = SLACK_AUTH_TTL) -> None:
        self.client = client
        self.clock = clock
        self.ttl = ttl
        self._lock = asyncio.Lock()
        self._cached: tuple[float, dict[str, Any]] | None = None

    async def __call__(self) -> dict[str, Any]:
        async with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < self.ttl:
                return self._cached[1]
            result = await self._probe()
            self._cached = (time.monotonic(), result)
            return result

    async def _probe(self) -> dict[str, Any]:
        stamp = self.clock.now().isoformat()
        try:
            response = await asyncio.wait_for(call("auth.test", self.client.auth_test()), timeout=SLACK_AUTH_TIMEOUT)
        except Exception as exc:
            code = exc.code if isinstance(exc, ChatError) and exc.code != "unreachable" else ""
            if code in _FATAL_AUTH:
                return {"status": "fail", "output": f"Slack refused the bot token: {code}", "time": stamp}
            # Slack (or the network) is down: the bot still stores alerts and timers; warn, don't fail.
            reason = code or type(exc.__cause__ or exc).__name__
            return {"status": "warn", "output": f"Slack unreachable: {reason}", "time": stamp}
        body = data(response)
        return {
            "status": "pass",
            "componentId": str(body.get("team_id") or ""),
            "observedValue": str(body.get("user") or ""),
            "time": stamp,
        }


DB_PING_TIMEOUT = 3.0
# The other checks read the database too: bounded alike, and run side by side, so a hung database
# costs /health one timeout, not one per check (with no bound at all on theirs).
PROBE_TIMEOUT = DB_PING_TIMEOUT


async def _ping(deps: Deps, now: str) -> dict[str, Any]:
    await deps.db.ping()
    return {"status": "pass", "time": now}


async def _probe(probe: HealthProbe, now: str, *, within: float | None) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(probe(), within)
    except TimeoutError:
        output = f"no answer within {within:g} s" if within is not None else "timed out"
        return {"status": "fail", "output": output, "time": now}
    except Exception as exc:
        return {"status": "fail", "output": type(exc).__name__, "time": now}


async def health_report(deps: Deps) -> tuple[int, dict[str, Any]]:
    """IETF health+json: pass when every check passes, warn (200) when only a non-critical one degrades,
    fail (503) when a critical one fails."""
    now = deps.clock.now().isoformat()
    # A PostgreSQL that accepts and never answers (a failover, a dropped route) would hold the ping for
    # the TCP or pool timeout, minutes: a load balancer wants "fail" now.
    database = _probe(lambda: _ping(deps, now), now, within=DB_PING_TIMEOUT)
    probes: dict[str, Awaitable[dict[str, Any]]] = {"database:connection": database}
    if deps.slack_auth is not None:  # bounded by its own timeout, where a slow Slack warns
        probes["slack:auth"] = _probe(deps.slack_auth, now, within=None)
    for name, probe in deps.health_probes.items():
        probes[name] = _probe(probe, now, within=PROBE_TIMEOUT)
    results = dict(zip(probes, await asyncio.gather(*probes.values()), strict=True))
    checks: dict[str, list[dict[str, Any]]] = {"database:connection": [results.pop("database:connection")]}
    if deps.scheduler is not None:
        running = deps.scheduler.running
        checks["scheduler:running"] = [{"status": "pass" if running else "fail", "time": now}]
    checks.update((name, [result]) for name, result in results.items())
    states = {check[0].get("status") for check in checks.values()}
    status = "fail" if "fail" in states else "warn" if "warn" in states else "pass"
    body = {"status": status, "serviceId": "incident-bot", "checks": checks}
    return (503 if status == "fail" else 200), body


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def request_context(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id and a start time for everything this request causes (logs, ack latency)."""
    incoming = request.headers.get("X-Request-ID", "")
    token = logs.bind_request_id(incoming if _REQUEST_ID.match(incoming) else None)
    started = request_started.set(time.perf_counter())
    rid = logs.current_request_id() or ""
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers["X-Request-ID"] = rid
        raise
    finally:
        request_started.reset(started)
        logs.request_id.reset(token)
    response.headers["X-Request-ID"] = rid
    return response


def build_web_app(deps: Deps, app: AsyncApp | None) -> web.Application:
    web_app = web.Application(client_max_size=2 * 1024 * 1024, middlewares=[request_context])
    secret = deps.settings.slack_signing_secret
    door = FrontDoor(app, deps, signing_secret=secret.get_secret_value() if secret else None) if app else None

    async def slack_events(request: web.Request) -> web.Response:
        assert app is not None and door is not None
        # Authenticated before parsed: nothing reads an unsigned body, and no garbage becomes a 500.
        raw = await request.read()
        timestamp = request.headers.get("X-Slack-Request-Timestamp", "")
        if not door.authentic(raw, timestamp=timestamp, signature=request.headers.get("X-Slack-Signature", "")):
            log.warning(
                "refused a request to /slack/events: missing, stale or wrong signature (%d bytes from %s)",
                len(raw),
                request.remote,
            )
            return web.Response(status=401, text="invalid request")
        problem = unreadable(raw.decode("utf-8"), request.content_type)
        if problem is None:
            try:
                bolt_request = await to_bolt_request(request)
            except Exception as exc:  # Bolt reads fields by shape: a signed body of another shape is not ours
                problem = f"unreadable ({type(exc).__name__})"
        if problem is not None:
            log.warning("refused a signed request to /slack/events: the body is %s", problem)
            return web.Response(status=400, text="malformed request")
        started = request_started.get() or time.perf_counter()
        if door.take(bolt_request, started=started):
            return web.Response(status=200)
        bolt_response = await door.through_bolt(bolt_request, started=started)
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        status, body = await health_report(deps)
        return web.Response(status=status, text=json.dumps(body), content_type=HEALTH_TYPE)

    async def metrics(_: web.Request) -> web.Response:
        registry = deps.metrics
        await registry.refresh(deps)
        body, content_type = registry.render()
        return web.Response(body=body, headers={"Content-Type": content_type})

    if app is not None:
        web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/health", health)
    web_app.router.add_get("/metrics", metrics)
    for method, path, handler in deps.http_routes:
        web_app.router.add_route(method, path, handler)
    add_dashboard(web_app, deps)
    return web_app
