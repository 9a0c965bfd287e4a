"""The services the demo's bot watches, on loopback: health endpoints and the deploy webhook that restarts them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from bot.demo.served import Served
from bot.statuspage.snapshot import iso

PHASES = ["queued", "building", "deploying", "success"]  # a deploy moves one phase on each status poll


class LocalServices(Served):
    """Health endpoints and a deploy webhook on loopback: the gateway answers 503 until it is restarted."""

    def __init__(self) -> None:
        self.gateway_up = False
        deployed = iso(datetime.now(UTC) - timedelta(minutes=50))  # the live one
        self.deployments: list[dict[str, Any]] = [
            {"id": "dep-41", "status": "success", "created_at": deployed, "can_rollback": True}
        ]
        self.restarting: dict[str, int] = {}
        self.restarts = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gateway/health", self._gateway)
        app.router.add_get("/web/health", self._web)
        app.router.add_post("/deploy", self._deploy)
        return app

    async def _gateway(self, _: web.Request) -> web.Response:
        if self.gateway_up:
            return web.json_response({"status": "UP", "components": {"db": {"status": "UP"}}})
        body = {"status": "DOWN", "components": {"db": {"status": "UP"}, "upstream-payments": {"status": "DOWN"}}}
        return web.json_response(body, status=503)

    async def _web(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _deploy(self, request: web.Request) -> web.Response:
        body = await request.json()
        action = body.get("action")
        current = self.deployments[0]
        if action == "current":
            return web.json_response({"deployment": current})
        if action == "list":
            return web.json_response({"deployments": self.deployments[: int(body.get("limit") or 10)]})
        if action in ("restart", "rollback"):
            return web.json_response({"deployment": self._new_deployment()})
        if action == "status":
            found = next((d for d in self.deployments if d["id"] == body.get("deployment_id")), None)
            if found is None:
                return web.json_response({"error": "no such deployment"}, status=404)
            self._advance(found)
            return web.json_response({"deployment": found})
        return web.json_response({"error": f"unknown action {action!r}"}, status=400)

    def _new_deployment(self) -> dict[str, Any]:
        """A restart or a rollback: a new deployment, queued; the gateway is up once it succeeds."""
        self.restarts += 1
        new: dict[str, Any] = {
            "id": f"dep-{41 + self.restarts}",
            "status": "queued",
            "created_at": datetime.now(UTC).isoformat(),
            "can_rollback": True,
        }
        self.deployments.insert(0, new)
        self.restarting[new["id"]] = 0
        return new

    def _advance(self, deployment: dict[str, Any]) -> None:
        """Each status poll moves a running deploy one phase on, so the bot sees it progress."""
        steps = self.restarting.get(deployment["id"])
        if steps is None:
            return
        deployment["status"] = PHASES[min(steps + 1, len(PHASES) - 1)]
        self.restarting[deployment["id"]] = steps + 1
        if deployment["status"] == "success":
            self.restarting.pop(deployment["id"], None)
            self.gateway_up = True
