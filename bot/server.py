"""The HTTP server: Slack at POST /slack/events, and the bot's own endpoints.

In Socket Mode Slack traffic arrives over the websocket, but this server still runs for
/health, /metrics and the alert webhooks.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from aiohttp import web
from slack_bolt.adapter.aiohttp import to_aiohttp_response, to_bolt_request
from slack_bolt.async_app import AsyncApp

from bot.deps import Deps

log = logging.getLogger(__name__)

HEALTH_TYPE = "application/health+json"


async def health_report(deps: Deps) -> tuple[int, dict[str, Any]]:
    """IETF health+json: pass when every check passes; fail (503) otherwise."""
    checks: dict[str, list[dict[str, Any]]] = {}
    ok = True
    now = deps.clock.now().isoformat()
    try:
        await deps.db.ping()
        checks["database:connection"] = [{"status": "pass", "time": now}]
    except Exception as exc:
        ok = False
        checks["database:connection"] = [{"status": "fail", "output": type(exc).__name__, "time": now}]
    scheduler = deps.services.get("scheduler")
    if scheduler is not None:
        running = bool(getattr(scheduler, "running", False))
        ok = ok and running
        checks["scheduler:running"] = [{"status": "pass" if running else "fail", "time": now}]
    for name, probe in deps.services.get("health_probes", {}).items():
        try:
            checks[name] = [await probe()]
            ok = ok and checks[name][0].get("status") != "fail"
        except Exception as exc:
            ok = False
            checks[name] = [{"status": "fail", "output": type(exc).__name__, "time": now}]
    body = {"status": "pass" if ok else "fail", "serviceId": "incident-bot", "checks": checks}
    return (200 if ok else 503), body


def build_web_app(deps: Deps, app: AsyncApp | None) -> web.Application:
    web_app = web.Application(client_max_size=2 * 1024 * 1024)

    async def slack_events(request: web.Request) -> web.Response:
        assert app is not None
        bolt_request = await to_bolt_request(request)
        bolt_response = await app.async_dispatch(bolt_request)
        return await to_aiohttp_response(bolt_response)

    async def health(_: web.Request) -> web.Response:
        status, body = await health_report(deps)
        return web.Response(status=status, text=json.dumps(body), content_type=HEALTH_TYPE)

    if app is not None:
        web_app.router.add_post("/slack/events", slack_events)
    web_app.router.add_get("/health", health)
    for method, path, handler in deps.services.get("http_routes", []):
        web_app.router.add_route(method, path, handler)
    return web_app
