"""A local Vercel REST API with the request shapes in `../shared/specs/README.md`.

Routes: `GET /v6/deployments`, `GET /v13/deployments/{id}`, `POST /v13/deployments?forceNew=1`,
`POST /v9/projects/{id}/rollback/{deploymentId}`, `POST /v10/projects/{id}/promote/{deploymentId}`,
`GET /v9/projects/{id}`. Every call needs `Authorization: Bearer <token>` (403 otherwise) and
`?teamId=` (a missing or wrong one is a violation). Deployments build one step per
`GET /v13/deployments/{id}`; a rollback's alias job moves one step per `GET /v9/projects/{id}`.
As Vercel does, the project carries `lastAliasRequest` only when asked with `?rollbackInfo=true`,
and rollback/promote take a JSON body (the vendor's CLI sends `{}` and marks it required). As Vercel
documents, rollback takes only a deployment that served production (422 otherwise); promote takes any
ready production deployment, a staged one among them.
`skip_next_alias()` makes the next alias job end `skipped` (a newer alias change superseded it).
An alias job made to fail (`fail_next_deploy()`) leaves production where it was, with the first of the
project's `domains` not moved: `GET /v1/projects/{id}/promote/aliases` lists the aliases of the last
promote request with their mapping status (`failedOnly=true`: the failed ones), in the documented shape
`{"aliases": [{"status", "alias", "id"}], "pagination"}`, or `{}` when the last request was no promote.
Vercel documents no reason for a failed alias job, so none is given anywhere.
Deployments carry what Vercel documents about serving production: `readySubstate` (READY only:
PROMOTED once production pointed at it, else STAGED), `isRollbackCandidate`, `aliasAssigned` (when,
in ms; `false` before) and `aliasError`. `seed(staged=…, alias_failed=…)` makes some that never
served; `left_out` names fields to leave out of every answer (an older API version's answer).
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.webhook import FakePlatform


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


class FakeVercel(FakePlatform):
    platform = "vercel"

    def __init__(
        self,
        *,
        token: str = "vercel-token",
        team_id: str = "team_test",
        project_id: str = "prj_web",
        project_name: str = "web",
    ) -> None:
        super().__init__()
        self.token = token
        self.team_id = team_id
        self.project_id = project_id
        self.project_name = project_name
        self.deployments: list[dict[str, Any]] = []  # newest first
        self.production_id: str | None = None
        self.last_alias_request: dict[str, Any] | None = None
        self.rolled_back = False
        self.page_cap = 100  # deployments listed at once at most, whatever `limit` asks: more need `until`
        self.left_out: set[str] = set()  # fields left out of every deployment in an answer
        self.domains = [f"{project_name}.example.com", f"{project_name}.vercel.app"]  # production's aliases
        self._alias_steps: list[str] = []
        self._alias_statuses: dict[str, str] = {}  # the last alias job's domains and how each ended
        self._skip_next = False
        self._ids = itertools.count(1)
        self._minutes = itertools.count(1)
        router = self.app.router
        router.add_get("/v6/deployments", self._list)
        router.add_get("/v13/deployments/{id}", self._get_deployment)
        router.add_post("/v13/deployments", self._create)
        router.add_post("/v9/projects/{project}/rollback/{id}", self._rollback)
        router.add_post("/v10/projects/{project}/promote/{id}", self._promote)
        router.add_get("/v9/projects/{project}", self._project)
        router.add_get("/v1/projects/{project}/promote/aliases", self._promote_aliases)

    def throttle_body(self) -> Any:
        return {"error": {"code": "rate_limited", "message": "Rate limit exceeded"}}

    # --- control surface ----------------------------------------------------------------------------

    def seed(
        self,
        versions: list[str],
        *,
        states: list[str] | None = None,
        staged: tuple[str, ...] = (),
        alias_failed: tuple[str, ...] = (),
    ) -> None:
        """Each READY one served production in turn, but those `staged` (deployed without the domain) or
        `alias_failed` (its alias assignment failed), which never did."""
        for index, version in enumerate(versions):
            state = states[index] if states else "READY"
            created = self.SEEDED_FROM + timedelta(hours=index)
            deployment = self._new(version, state, created)
            if version in alias_failed:
                deployment["_alias_error"] = {"code": "alias_failed", "message": f"could not assign {version}"}
            elif state == "READY" and version not in staged:
                self._mark_served(deployment, created + timedelta(minutes=5))
            self.deployments.insert(0, deployment)
        served = [d for d in self.deployments if d["_assigned_at"]]
        self.production_id = served[0]["uid"] if served else None

    def skip_next_alias(self) -> None:
        self._skip_next = True

    def live_version(self) -> str | None:
        live = self._by_id(self.production_id) if self.production_id else None
        return live["meta"]["githubCommitMessage"] if live else None

    def id_of(self, version: str) -> str:
        return next(d["uid"] for d in self.deployments if d["meta"]["githubCommitMessage"] == version)

    # --- state --------------------------------------------------------------------------------------

    def _new(self, version: str, state: str, created: datetime, pending: list[str] | None = None) -> dict[str, Any]:
        uid = f"dpl_{next(self._ids):06d}"
        return {
            "uid": uid,
            "name": self.project_name,
            "url": f"{self.project_name}-{uid[4:]}.vercel.app",
            "created": _ms(created),
            "readyState": state,
            "target": "production",
            "meta": {"githubCommitMessage": version, "githubCommitSha": f"sha{uid[4:]}"},
            "_pending": pending or [],
            "_assigned_at": None,  # when production first pointed at it (ms)
            "_alias_error": None,
        }

    def _mark_served(self, deployment: dict[str, Any], when: datetime | None = None) -> None:
        if not deployment["_assigned_at"]:
            deployment["_assigned_at"] = _ms(when or datetime.now(UTC))

    def _served(self, d: dict[str, Any], *, lookup: bool = False) -> dict[str, Any]:
        """The documented fields about serving production, less those `left_out`. The list's
        `aliasAssigned` is a time (or `false`); the lookup's is a boolean, with `aliasAssignedAt`."""
        promoted = bool(d["_assigned_at"]) or d["uid"] == self.production_id
        fields: dict[str, Any] = {
            "aliasAssigned": promoted if lookup else (d["_assigned_at"] or promoted),
            "aliasError": d["_alias_error"],
            "isRollbackCandidate": promoted and d["readyState"] == "READY" and d["target"] == "production",
        }
        if d["readyState"] == "READY":
            fields["readySubstate"] = "PROMOTED" if promoted else "STAGED"
        return {k: v for k, v in fields.items() if k not in self.left_out}

    def _by_id(self, deployment_id: str | None) -> dict[str, Any] | None:
        return next((d for d in self.deployments if d["uid"] == deployment_id), None)

    def _list_item(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "uid": d["uid"],
            "name": d["name"],
            "url": d["url"],
            "created": d["created"],
            "createdAt": d["created"],
            "state": d["readyState"],
            "readyState": d["readyState"],
            "target": d["target"],
            "meta": d["meta"],
            "creator": {"uid": "usr_1", "username": "ci"},
            **self._served(d),
        }

    def _full(self, d: dict[str, Any]) -> dict[str, Any]:
        return {
            "id": d["uid"],
            "name": d["name"],
            "url": d["url"],
            "createdAt": d["created"],
            "readyState": d["readyState"],
            "status": d["readyState"],
            "target": d["target"],
            "meta": d["meta"],
            "projectId": self.project_id,
            "aliasAssignedAt": d["_assigned_at"],
            **self._served(d, lookup=True),
        }

    # --- checks shared by every route ---------------------------------------------------------------

    def _check(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(
                {"error": {"code": "forbidden", "message": "Not authorized", "invalidToken": True}}, status=403
            )
        if request.query.get("teamId") != self.team_id:
            return self.violation(
                f"{request.method} {request.path}: teamId={request.query.get('teamId')!r}",
                status=403,
                body={"error": {"code": "forbidden", "message": "You don't have permission to access this resource."}},
            )
        project = request.match_info.get("project")
        if project is not None and project != self.project_id:
            return web.json_response({"error": {"code": "not_found", "message": "Project not found"}}, status=404)
        return None

    # --- routes -------------------------------------------------------------------------------------

    async def _list(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        if request.query.get("projectId") != self.project_id:
            return self.violation(f"list without the project: projectId={request.query.get('projectId')!r}")
        found = self.deployments
        if request.query.get("target"):
            found = [d for d in found if d["target"] == request.query["target"]]
        if request.query.get("state"):
            states = set(request.query["state"].split(","))
            found = [d for d in found if d["readyState"] in states]
        if request.query.get("until"):  # the page after one whose `pagination.next` this is
            found = [d for d in found if d["created"] < int(request.query["until"])]
        page = found[: min(int(request.query.get("limit", "20")), self.page_cap)]
        more = len(found) > len(page) and bool(page)
        return web.json_response(
            {
                "deployments": [self._list_item(d) for d in page],
                "pagination": {"count": len(page), "next": page[-1]["created"] if more else None, "prev": None},
            }
        )

    async def _get_deployment(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        found = self._by_id(request.match_info["id"])
        if found is None:
            return web.json_response(
                {"error": {"code": "not_found", "message": "The deployment could not be found."}}, status=404
            )
        if found["_pending"]:
            found["readyState"] = found["_pending"].pop(0)
            if found["readyState"] == "READY" and found["target"] == "production" and not self.rolled_back:
                self.production_id = found["uid"]  # auto-assigned production alias
                self._mark_served(found)
        return web.json_response(self._full(found))

    async def _create(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        try:
            body = await request.json()
        except ValueError:
            return self.violation("POST /v13/deployments: body is not JSON")
        source = self._by_id(body.get("deploymentId"))
        if not isinstance(body.get("name"), str) or not body["name"]:
            return self.violation("POST /v13/deployments: `name` is required")
        if source is None:
            return self.violation(f"redeploy of unknown deploymentId {body.get('deploymentId')!r}")
        if body.get("target") != "production":
            return self.violation(f"redeploy with target {body.get('target')!r}")
        if request.query.get("forceNew") != "1":
            return self.violation("redeploy without forceNew=1")
        self.restarts += 1
        created = datetime.fromtimestamp(max(d["created"] for d in self.deployments) / 1000, UTC) + timedelta(
            minutes=next(self._minutes)
        )
        new = self._new(
            source["meta"]["githubCommitMessage"], "QUEUED", created, self._plan(["BUILDING", "READY"], "ERROR")
        )
        self.deployments.insert(0, new)
        return web.json_response(self._full(new))

    async def _alias(self, request: web.Request, kind: str) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        target = self._by_id(request.match_info["id"])
        if target is None:
            return web.json_response({"error": {"code": "not_found", "message": "Deployment not found"}}, status=404)
        try:
            body = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            return self.violation(f"{request.method} {request.path}: the JSON body (`{{}}`) is required")
        if target["readyState"] != "READY" or target["target"] != "production":
            return web.json_response(
                {"error": {"code": "bad_request", "message": "Deployment is not a ready production deployment"}},
                status=400,
            )
        if target["uid"] == self.production_id:
            return web.json_response(
                {"error": {"code": "bad_request", "message": "Deployment is already the current production one"}},
                status=400,
            )
        if kind == "rollback" and not target["_assigned_at"]:
            # Instant rollback takes only a deployment that was aliased to production once; a staged one
            # (or one whose alias failed) is promoted instead. Vercel documents no status for the refusal.
            return web.json_response(
                {"error": {"code": "not_rollback_candidate", "message": "Deployment was never promoted"}},
                status=422,
            )
        self.last_alias_request = {
            "fromDeploymentId": self.production_id,
            "toDeploymentId": target["uid"],
            "jobStatus": "pending",
            "requestedAt": _ms(datetime.now(UTC)),
            "type": kind,
        }
        self._alias_steps = self._plan(["in-progress", "succeeded"], "failed")
        self._alias_statuses = {domain: "pending" for domain in self.domains}
        if self._skip_next:
            self._skip_next = False
            self._alias_steps = ["in-progress", "skipped"]
        return web.Response(status=201)

    async def _rollback(self, request: web.Request) -> web.Response:
        return await self._alias(request, "rollback")

    async def _promote(self, request: web.Request) -> web.Response:
        return await self._alias(request, "promote")

    async def _project(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        job = self.last_alias_request
        if job is not None and self._alias_steps:
            job["jobStatus"] = self._alias_steps.pop(0)
            if job["jobStatus"] in ("succeeded", "failed"):
                failed = self.domains[:1] if job["jobStatus"] == "failed" else []
                self._alias_statuses = {d: "failed" if d in failed else "completed" for d in self.domains}
            if job["jobStatus"] == "succeeded":
                self.production_id = job["toDeploymentId"]
                if (moved := self._by_id(self.production_id)) is not None:
                    self._mark_served(moved)
                self.rolled_back = job["type"] == "rollback"
        live = self._by_id(self.production_id)
        return web.json_response(
            {
                "id": self.project_id,
                "name": self.project_name,
                "accountId": self.team_id,
                "targets": {"production": self._full(live) if live else None},
                **({"lastAliasRequest": job} if request.query.get("rollbackInfo") == "true" else {}),
                "lastRollbackTarget": {"toDeploymentId": job["toDeploymentId"]} if self.rolled_back and job else None,
            }
        )

    async def _promote_aliases(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        limit = request.query.get("limit", "20")
        if not limit.isdigit() or int(limit) > 100:
            return self.violation(f"promote aliases with limit={limit!r} (at most 100)")
        job = self.last_alias_request
        if job is None or job["type"] != "promote":
            return web.json_response({})
        failed_only = request.query.get("failedOnly") == "true"
        aliases = [
            {"status": status, "alias": domain, "id": f"alias_{index}"}
            for index, (domain, status) in enumerate(self._alias_statuses.items())
            if status == "failed" or not failed_only
        ][: int(limit)]
        return web.json_response(
            {"aliases": aliases, "pagination": {"count": len(aliases), "next": None, "prev": None}}
        )
