"""A local Atlassian Statuspage REST API (v1) that refuses what the real one refuses.

Routes: `POST /v1/pages/{page_id}/incidents`, `PATCH /v1/pages/{page_id}/incidents/{incident_id}`,
`GET /v1/pages/{page_id}/incidents/unresolved` (investigating, identified or monitoring; with `metadata`),
`GET` and `DELETE /v1/pages/{page_id}/incidents/{incident_id}` (404 for one that is not there), and
`PATCH /v1/pages/{page_id}/incidents/{incident_id}/incident_updates/{incident_update_id}` with
`{"incident_update": {"body", "display_at", "deliver_notifications", "wants_twitter_update"}}` (an update's
text corrected in place; nothing else of it can be changed there).
Held to the facts in `../shared/specs/README.md` and Statuspage's API docs:

- `Authorization: OAuth <api key>` on every call (401 without it, or with another scheme or key);
- a JSON body in the `{"incident": {...}}` envelope (400 without it), `name` required on create;
- `status` in investigating|identified|monitoring|resolved, `impact_override` in none|minor|major|critical,
  component statuses in operational|degraded_performance|partial_outage|major_outage|under_maintenance,
  component ids that exist on the page (422 otherwise);
- `metadata` an object whose top-level values are objects (422 otherwise), kept and answered back;
- one request a second per key: a request sooner than that after the previous one gets 420 (or 429).

Incident updates are answered as Statuspage's incident update objects (`id`, `incident_id`, `status`, `body`,
`created_at`, `updated_at`, `display_at`, `deliver_notifications`), newest first in an incident's
`incident_updates`; the create's and update's answers are the incident with them, the update PATCH's answer the
incident update itself (its `updated_at` moved, `created_at` kept).

`fail_next(status, times)` makes the next calls fail (an outage, a throttle with Retry-After), and `recover()`
ends that early;
`refuse_deletes(status)` makes every DELETE of an incident fail so (a key whose role may not delete, say);
`add_by_hand(incident_id, status, body)` adds an update as someone on Statuspage's own pages would;
`lose_next_answer()` carries out the next write and answers 502 (the answer lost on the way back);
`hold()` keeps the next write waiting, not yet carried out, until its event is set.
Accepted writes are in `calls`, accepted reads in `reads`, refused ones in `refused` (with why), in order.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

STATUSES = {"investigating", "identified", "monitoring", "resolved"}
IMPACTS = {"none", "minor", "major", "critical"}
COMPONENT_STATUSES = {"operational", "degraded_performance", "partial_outage", "major_outage", "under_maintenance"}


@dataclass
class Call:
    method: str
    path: str
    body: Any
    at: float
    status: int = 200
    reason: str = ""


@dataclass
class FakeIncident:
    id: str
    name: str
    status: str
    impact: str
    updates: list[dict[str, Any]] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)


class FakeStatuspage:
    def __init__(
        self,
        *,
        page_id: str = "pg_test",
        api_key: str = "sp-key",
        components: tuple[str, ...] = ("cmp_api", "cmp_web"),
        min_interval: float = 1.0,
        throttle_status: int = 420,
    ) -> None:
        self.page_id = page_id
        self.api_key = api_key
        self.components = dict.fromkeys(components, "operational")
        self.min_interval = min_interval
        self.throttle_status = throttle_status
        self.incidents: dict[str, FakeIncident] = {}
        self.calls: list[Call] = []
        self.refused: list[Call] = []
        self.reads: list[Call] = []
        self.held: list[Call] = []
        self._holds: list[asyncio.Event] = []
        self._lose_next = False
        self._failures: list[tuple[int, float | None]] = []
        self._refuse_deletes: int | None = None
        self._last: float | None = None
        self._ids = itertools.count(1)
        self._update_ids = itertools.count(1)
        self.app = web.Application()
        self.app.router.add_post("/v1/pages/{page}/incidents", self._create)
        self.app.router.add_patch("/v1/pages/{page}/incidents/{incident}", self._update)
        self.app.router.add_get("/v1/pages/{page}/incidents/unresolved", self._unresolved)
        self.app.router.add_get("/v1/pages/{page}/incidents/{incident}", self._get)
        self.app.router.add_delete("/v1/pages/{page}/incidents/{incident}", self._delete)
        self.app.router.add_patch("/v1/pages/{page}/incidents/{incident}/incident_updates/{update}", self._edit_update)
        self.deleted: list[FakeIncident] = []
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> None:
        self._runner = web.AppRunner(self.app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}/v1"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    def fail_next(self, status: int, *, times: int = 1, retry_after: float | None = None) -> None:
        self._failures += [(status, retry_after)] * times

    def recover(self) -> None:
        """Statuspage is back: the failures `fail_next` queued and not yet answered are dropped."""
        self._failures.clear()

    def refuse_deletes(self, status: int | None) -> None:
        self._refuse_deletes = status

    def add_by_hand(self, incident_id: str, *, status: str, body: str) -> dict[str, Any]:
        record = self.incidents[incident_id]
        record.status = status
        return self._add_update(record, body)

    def _add_update(self, record: FakeIncident, body: str, *, notify: bool = True) -> dict[str, Any]:
        now = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        update = {
            "id": f"upd{next(self._update_ids):04d}",
            "incident_id": record.id,
            "status": record.status,
            "body": body,
            "created_at": now,
            "updated_at": now,
            "display_at": now,
            "deliver_notifications": notify,
        }
        record.updates.append(update)
        return update

    def lose_next_answer(self) -> None:
        self._lose_next = True

    def hold(self) -> asyncio.Event:
        """The next accepted write waits, not yet done and unanswered, until the event is set (it is in `held`)."""
        gate = asyncio.Event()
        self._holds.append(gate)
        return gate

    async def _wait_if_held(self, call: Call) -> None:
        if self._holds:
            gate = self._holds.pop(0)
            self.held.append(call)
            await gate.wait()

    def _answer(self, body: dict[str, Any], status: int) -> web.Response:
        if self._lose_next:
            self._lose_next = False
            return web.json_response({"error": "Bad Gateway"}, status=502)
        return web.json_response(body, status=status)

    # --- the contract -------------------------------------------------------------------------

    def _refuse(self, call: Call, status: int, reason: str, headers: dict[str, str] | None = None) -> web.Response:
        call.status, call.reason = status, reason
        self.refused.append(call)
        return web.json_response({"error": reason}, status=status, headers=headers)

    async def _gate(self, request: web.Request) -> tuple[Call, dict[str, Any] | web.Response]:
        """Auth, pacing, injected failures, page, envelope: what every call must pass."""
        call, refused = await self._admit(request)
        if refused is not None:
            return call, refused
        body = call.body
        if not request.content_type.startswith("application/json") or not isinstance(body, dict):
            return call, self._refuse(call, 400, "body must be JSON matching the Content-Type")
        incident = body.get("incident")
        if not isinstance(incident, dict):
            return call, self._refuse(call, 400, "incident is missing")
        problem = self._invalid(incident)
        if problem:
            return call, self._refuse(call, 422, problem)
        return call, incident

    async def _admit(self, request: web.Request) -> tuple[Call, web.Response | None]:
        """Auth, pacing, injected failures and the page: reads pass these too."""
        now = time.monotonic()
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        call = Call(request.method, request.path, body, now)
        if request.headers.get("Authorization") != f"OAuth {self.api_key}":
            return call, self._refuse(call, 401, "Could not authenticate")
        # Pacing counts every authenticated request, refused or not, as the real limit does.
        previous, self._last = self._last, now
        if previous is not None and now - previous < self.min_interval * 0.98:
            return call, self._refuse(call, self.throttle_status, "Rate limit exceeded", {"Retry-After": "1"})
        if self._failures:
            status, retry_after = self._failures.pop(0)
            headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else None
            return call, self._refuse(call, status, "injected failure", headers)
        if request.match_info["page"] != self.page_id:
            return call, self._refuse(call, 404, "page not found")
        return call, None

    def _invalid(self, incident: dict[str, Any]) -> str | None:
        return self._invalid_fields(incident) or self._invalid_components(incident)

    def _invalid_fields(self, incident: dict[str, Any]) -> str | None:
        metadata = incident.get("metadata", {})
        if not isinstance(metadata, dict) or not all(isinstance(v, dict) for v in metadata.values()):
            return "metadata: top level values must be objects"
        if "status" in incident and incident["status"] not in STATUSES:
            return f"status {incident['status']!r} is not one of {sorted(STATUSES)}"
        if "impact_override" in incident and incident["impact_override"] not in IMPACTS:
            return f"impact_override {incident['impact_override']!r} is not one of {sorted(IMPACTS)}"
        return None

    def _invalid_components(self, incident: dict[str, Any]) -> str | None:
        components = incident.get("components") or {}
        if not isinstance(components, dict):
            return "components must be an object of component id to status"
        for component_id, status in components.items():
            if component_id not in self.components:
                return f"component {component_id!r} does not exist"
            if status not in COMPONENT_STATUSES:
                return f"component status {status!r} is not one of {sorted(COMPONENT_STATUSES)}"
        for component_id in incident.get("component_ids") or []:
            if component_id not in self.components:
                return f"component {component_id!r} does not exist"
        return None

    def _apply(self, record: FakeIncident, fields: dict[str, Any]) -> dict[str, Any]:
        record.name = fields.get("name", record.name)
        record.status = fields.get("status", record.status)
        record.impact = fields.get("impact_override", record.impact)
        record.metadata.update(fields.get("metadata") or {})
        self.components.update(fields.get("components") or {})
        if fields.get("body"):
            self._add_update(record, fields["body"], notify=fields.get("deliver_notifications", True) is not False)
        return self._view(record)

    async def _create(self, request: web.Request) -> web.Response:
        call, checked = await self._gate(request)
        if isinstance(checked, web.Response):
            return checked
        if not checked.get("name"):
            return self._refuse(call, 422, "name can't be blank")
        await self._wait_if_held(call)
        record = FakeIncident(id=f"inc{next(self._ids):04d}", name="", status="investigating", impact="none")
        self.incidents[record.id] = record
        self.calls.append(call)
        return self._answer(self._apply(record, checked), 201)

    async def _update(self, request: web.Request) -> web.Response:
        call, checked = await self._gate(request)
        if isinstance(checked, web.Response):
            return checked
        record = self.incidents.get(request.match_info["incident"])
        if record is None:
            return self._refuse(call, 404, "incident not found")
        await self._wait_if_held(call)
        self.calls.append(call)
        return self._answer(self._apply(record, checked), 200)

    async def _unresolved(self, request: web.Request) -> web.Response:
        call, refused = await self._admit(request)
        if refused is not None:
            return refused
        self.reads.append(call)
        open_ = [r for r in self.incidents.values() if r.status != "resolved"]
        return web.json_response([self._view(r) for r in reversed(open_)])

    async def _get(self, request: web.Request) -> web.Response:
        call, refused = await self._admit(request)
        if refused is not None:
            return refused
        record = self.incidents.get(request.match_info["incident"])
        if record is None:
            return self._refuse(call, 404, "incident not found")
        self.reads.append(call)
        return web.json_response(self._view(record))

    async def _delete(self, request: web.Request) -> web.Response:
        call, refused = await self._admit(request)
        if refused is not None:
            return refused
        record = self.incidents.get(request.match_info["incident"])
        if record is None:
            return self._refuse(call, 404, "incident not found")
        if self._refuse_deletes is not None:
            return self._refuse(call, self._refuse_deletes, "You are not authorized to delete incidents")
        await self._wait_if_held(call)
        self.calls.append(call)
        del self.incidents[record.id]
        self.deleted.append(record)
        return self._answer(self._view(record), 200)

    async def _edit_update(self, request: web.Request) -> web.Response:
        call, refused = await self._admit(request)
        if refused is not None:
            return refused
        body = call.body
        fields = body.get("incident_update") if isinstance(body, dict) else None
        if not isinstance(fields, dict):
            return self._refuse(call, 400, "incident_update is missing")
        unknown = set(fields) - {"body", "display_at", "deliver_notifications", "wants_twitter_update"}
        if unknown:
            return self._refuse(call, 422, f"incident_update cannot change {sorted(unknown)}")
        record = self.incidents.get(request.match_info["incident"])
        target = next((u for u in record.updates if u["id"] == request.match_info["update"]), None) if record else None
        if target is None:
            return self._refuse(call, 404, "incident update not found")
        await self._wait_if_held(call)
        self.calls.append(call)
        target.update({k: v for k, v in fields.items() if k in ("body", "display_at")})
        target["updated_at"] = datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        return self._answer(dict(target), 200)

    def _view(self, record: FakeIncident) -> dict[str, Any]:
        return {
            "id": record.id,
            "name": record.name,
            "status": record.status,
            "impact": record.impact,
            "metadata": record.metadata,
            "incident_updates": list(reversed(record.updates)),
        }
