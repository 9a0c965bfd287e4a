"""A deploy-webhook receiver that holds the bot to the contract in `bot/platforms/webhook.py`,
plus the bases every fake shares: `FakeServer` (local HTTP, recording, faults) and `FakePlatform`
(the control surface of the four deploy-platform fakes: `fail_next_deploy`, `stall`, `restarts`).

Every fake is a real aiohttp server on 127.0.0.1 (port 0), so the bot reaches it through its
real `httpx.AsyncClient`. A fake refuses what the real service would refuse and writes each
such request to `violations`; the test fixtures fail a test that leaves any behind.
Faults for the next request (`throttle_next`, `hang_next`, `inject`) exercise error handling.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from aiohttp import web
from multidict import CIMultiDict


@dataclass
class Fault:
    status: int = 500
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None
    hang: float = 0.0  # seconds to wait before answering (released early when the fake stops)
    path_contains: str = ""  # only for requests whose path contains this
    body_contains: str = ""  # ... and whose body contains this (a GraphQL mutation's name)
    # The request is carried out, then this answer replaces the real one: an answer lost on the way back
    # (a proxy's 502 after the upstream did the work), which is what makes a retried create a duplicate.
    after: bool = False
    method: str = ""  # only for requests with this method (any when empty)
    skip: int = 0  # matching requests this fault lets by (to the next fault, or answered) before it applies


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, str]
    headers: CIMultiDict[str]  # case-insensitive, as HTTP headers are
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class FakeServer:
    """A local aiohttp server with request recording, violations and injectable faults."""

    def __init__(self) -> None:
        self.app = web.Application(middlewares=[self._middleware])
        self.requests: list[Seen] = []
        self.violations: list[str] = []
        self._faults: list[Fault] = []
        self._runner: web.AppRunner | None = None
        self._release = asyncio.Event()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # --- faults ----------------------------------------------------------------------------------

    def inject(self, fault: Fault) -> None:
        self._faults.append(fault)

    def throttle_next(self, retry_after: float | str = 7, *, path_contains: str = "", body_contains: str = "") -> None:
        self.inject(
            Fault(
                429,
                {"Retry-After": str(retry_after)},
                self.throttle_body(),
                path_contains=path_contains,
                body_contains=body_contains,
            )
        )

    def hang_next(self, seconds: float = 30.0, *, path_contains: str = "") -> None:
        self.inject(Fault(200, {}, {}, hang=seconds, path_contains=path_contains))

    def hang_until_released(self, *, body_contains: str = "", path_contains: str = "") -> None:
        """The next matching request waits until `release()` (or the fake stops), then is answered normally.

        After a `release()` this holds again: the requests let go before stay let go."""
        if self._release.is_set():
            self._release = asyncio.Event()
        self.inject(Fault(200, {}, {}, hang=60.0, path_contains=path_contains, body_contains=body_contains))

    def release(self) -> None:
        """Let every held request go on."""
        self._release.set()

    def lose_answer_next(self, *, path_contains: str = "", body_contains: str = "", method: str = "POST") -> None:
        """The next matching request is carried out, but the client gets a 502 instead of its answer."""
        self.inject(
            Fault(
                502,
                {},
                {"message": "Bad Gateway"},
                path_contains=path_contains,
                body_contains=body_contains,
                after=True,
                method=method,
            )
        )

    def throttle_body(self) -> Any:
        return {"error": "rate limited"}

    def violation(self, message: str, status: int = 400, body: Any = None) -> web.Response:
        self.violations.append(message)
        return web.json_response(body if body is not None else {"error": message}, status=status)

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[[web.Request], Any]) -> web.StreamResponse:
        body = await request.read()
        self.requests.append(
            Seen(request.method, request.path, dict(request.query), CIMultiDict(request.headers), body)
        )
        for fault in self._faults:
            if fault.path_contains in request.path and fault.body_contains.encode() in body:
                if fault.method and request.method != fault.method:
                    continue
                if fault.skip:
                    fault.skip -= 1
                    continue
                self._faults.remove(fault)
                if fault.after:
                    await handler(request)
                    return web.json_response(fault.body, status=fault.status, headers=fault.headers)
                if fault.hang:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._release.wait(), timeout=fault.hang)
                if fault.status == 200 and fault.hang:
                    break  # a slow but otherwise normal answer
                return web.json_response(fault.body, status=fault.status, headers=fault.headers)
        response: web.StreamResponse = await handler(request)
        return response


class FakePlatform(FakeServer):
    """A deploy platform's fake: `seed`, `live_version` and `id_of` are its own; the rest is here."""

    platform = ""
    FAILED = "failed"  # the platform's word for a failed deployment
    SEEDED_FROM = datetime(2026, 11, 1, tzinfo=UTC)  # `seed` creates one deployment an hour from here

    def __init__(self) -> None:
        super().__init__()
        self.restarts = 0
        self._fail_next = False
        self._stall = False

    def fail_next_deploy(self) -> None:
        self._fail_next = True

    def stall(self) -> None:
        self._stall = True

    def _next_outcome(self) -> str:
        """What the next deployment does: "stall", "fail" (once per `fail_next_deploy`) or "ok"."""
        if self._stall:
            return "stall"
        if self._fail_next:
            self._fail_next = False
            return "fail"
        return "ok"

    def _plan(self, steps: list[str], fail_as: str | None = None) -> list[str]:
        """The states the next deployment goes through: as given, stuck in the first, or failing at the end."""
        outcome = self._next_outcome()
        if outcome == "stall":
            return [steps[0]] * 10_000
        if outcome == "fail":
            return [*steps[:-1], fail_as or self.FAILED]
        return steps


# --- the webhook receiver --------------------------------------------------------------------------

SECRET = "webhook-test-secret"


def _iso(when: datetime) -> str:
    return when.isoformat().replace("+00:00", "Z")


_FINAL = {"success", "failed", "cancelled"}


class FakeWebhook(FakePlatform):
    """A team's deploy tool: verifies signatures and keeps deployments like a small platform."""

    platform = "webhook"
    path = "/hooks/deploy"

    def __init__(self, *, secret: str = SECRET, service: str = "billing", now: Callable[[], float] = time.time):
        super().__init__()
        self.secret = secret
        self.service = service
        self.now = now
        self.deployments: list[dict[str, Any]] = []  # newest first
        self._ids = itertools.count(1)
        self._seen_requests: set[str] = set()
        self.note: Any = None  # the receiver's own words (`meta.note`) on the deployments it makes from now on
        self.app.router.add_post(self.path, self._handle)

    @property
    def hook_url(self) -> str:
        return self.url + self.path

    # --- the uniform control surface of the platform fakes --------------------------------------

    def seed(self, versions: list[str]) -> None:
        """One deployment an hour, each replaced by the next (`replaced_at`), the last one live."""
        for index, version in enumerate(versions):
            live = index == len(versions) - 1
            created = self.SEEDED_FROM + timedelta(hours=index)
            deployment = self._new(version, "success" if live else "removed", created)
            if not live:
                deployment["replaced_at"] = _iso(created + timedelta(hours=1))
            self.deployments.insert(0, deployment)

    def report_unhealthy(self, version: str, reason: str | None = None) -> None:
        """The receiver says `version` did not run healthily (`healthy: false`, with `unhealthy_reason`)."""
        deployment = next(d for d in self.deployments if d["meta"]["version"] == version)
        deployment["healthy"] = False
        if reason is not None:
            deployment["unhealthy_reason"] = reason

    def forget_health(self) -> None:
        """A receiver that implements only the required fields: no `healthy`, `unhealthy_reason` or `replaced_at`."""
        for deployment in self.deployments:
            for key in ("healthy", "unhealthy_reason", "replaced_at"):
                deployment.pop(key, None)

    def live_version(self) -> str | None:
        live = self._live()
        return live["meta"]["version"] if live else None

    def id_of(self, version: str) -> str:
        return next(d["id"] for d in self.deployments if d["meta"]["version"] == version)

    # --- internals -----------------------------------------------------------------------------

    def _new(self, version: str, status: str, created: datetime, pending: list[str] | None = None) -> dict[str, Any]:
        return {
            "id": f"hook-{next(self._ids):04d}",
            "status": status,
            "created_at": _iso(created),
            "url": f"https://{self.service}.example.com",
            "can_rollback": status in ("success", "removed"),
            "meta": {"version": version, **({"note": self.note} if self.note is not None else {})},
            "_pending": pending or [],
        }

    def _live(self) -> dict[str, Any] | None:
        return next((d for d in self.deployments if d["status"] == "success"), None)

    def _advance(self, deployment: dict[str, Any]) -> None:
        if not deployment["_pending"]:
            return
        deployment["status"] = deployment["_pending"].pop(0)
        if deployment["status"] == "success":
            for other in self.deployments:
                if other is not deployment and other["status"] == "success":
                    other["status"] = "removed"
                    other["replaced_at"] = _iso(datetime.fromtimestamp(self.now(), UTC))
            deployment["can_rollback"] = True

    @staticmethod
    def _public(deployment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in deployment.items() if not k.startswith("_")}

    async def _handle(self, request: web.Request) -> web.Response:
        checked = await self._verified(request)
        if isinstance(checked, web.Response):
            return checked
        payload = checked
        if payload.get("service") != self.service:
            return web.json_response({"error": f"unknown service {payload.get('service')}"}, status=404)
        actions = {
            "current": self._current,
            "list": self._list,
            "status": self._status,
            "restart": self._restart,
            "rollback": self._rollback,
        }
        action = actions.get(str(payload.get("action")))
        if action is None:
            return self.violation(f"unknown action {payload.get('action')!r}")
        return action(payload)

    async def _verified(self, request: web.Request) -> dict[str, Any] | web.Response:
        """The signed, fresh, not replayed payload; or the answer that refuses it."""
        body = await request.read()
        expected = "sha256=" + hmac.new(self.secret.encode(), body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, request.headers.get("X-Signature-256", "")):
            return web.json_response({"error": "bad signature"}, status=401)
        if request.content_type != "application/json":
            return self.violation(f"content type {request.content_type}")
        try:
            payload: dict[str, Any] = json.loads(body)
        except ValueError:
            return self.violation("body is not JSON")
        if str(payload.get("timestamp")) != request.headers.get("X-Timestamp"):
            return self.violation("X-Timestamp differs from the signed body's timestamp")
        if abs(self.now() - float(payload["timestamp"])) > 300:
            return web.json_response({"error": "stale request"}, status=401)
        return self._first_use(request, payload)

    def _first_use(self, request: web.Request, payload: dict[str, Any]) -> dict[str, Any] | web.Response:
        request_id = payload.get("request_id")
        if not request_id or request.headers.get("X-Request-Id") != request_id:
            return self.violation("missing or mismatched request_id")
        if request_id in self._seen_requests:
            return self.violation("request_id reused (a replay)")
        self._seen_requests.add(request_id)
        return payload

    def _current(self, payload: dict[str, Any]) -> web.Response:
        live = self._live()
        return web.json_response({"deployment": self._public(live) if live else None})

    def _list(self, payload: dict[str, Any]) -> web.Response:
        limit = int(payload.get("limit") or 10)
        return web.json_response({"deployments": [self._public(d) for d in self.deployments[:limit]]})

    def _status(self, payload: dict[str, Any]) -> web.Response:
        found = next((d for d in self.deployments if d["id"] == payload.get("deployment_id")), None)
        if found is None:
            return web.json_response({"error": "no such deployment"}, status=404)
        self._advance(found)
        return web.json_response({"deployment": self._public(found)})

    def _restart(self, payload: dict[str, Any]) -> web.Response:
        live = self._live()
        if live is None:
            return web.json_response({"error": "nothing is running"}, status=409)
        self.restarts += 1
        now = datetime.fromtimestamp(self.now(), UTC)
        new = self._new(live["meta"]["version"], "queued", now, self._plan(["deploying", "success"]))
        new["can_rollback"] = False
        self.deployments.insert(0, new)
        return web.json_response({"deployment": self._public(new)}, status=202)

    def _rollback(self, payload: dict[str, Any]) -> web.Response:
        target = next((d for d in self.deployments if d["id"] == payload.get("target_deployment_id")), None)
        if target is None:
            return self.violation("rollback without a known target_deployment_id", status=404)
        now = datetime.fromtimestamp(self.now(), UTC)
        new = self._new(target["meta"]["version"], "queued", now, self._plan(["building", "deploying", "success"]))
        new["can_rollback"] = False
        self.deployments.insert(0, new)
        return web.json_response({"deployment": self._public(new)}, status=202)
