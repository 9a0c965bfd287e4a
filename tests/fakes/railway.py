"""A local Railway GraphQL API that executes every document against the published schema.

Each request is parsed, validated and executed with graphql-core against
`../shared/specs/railway/schema.json`, so a query with a wrong field, a selection on a
`Boolean!` mutation or a badly typed variable fails here as it would on Railway (and is written
to `violations`). Answers have the schema's shapes; deployments keep state and move through
QUEUED/INITIALIZING → BUILDING → DEPLOYING → SUCCESS one step per `deployment(id)` poll.
As on Railway, the deployment a rollback or redeploy makes is listed a moment after the mutation
answers: `appear_after` deployment listings later (1 by default; `None` never). The fake keeps a
time of its own: each thing it makes is `tick` later than the newest deployment (a minute by
default), and every answer's `Date` is that time (none readable with `send_date` off).
Auth is `Authorization: Bearer <account token>` or `Project-Access-Token: <project token>`.
Each deployment that went live has an instance run (`deploymentInstanceExecutions`): RUNNING while
live, REMOVED when replaced, CRASHED when it crashed (and still CRASHED after it was replaced).
"""

from __future__ import annotations

import email.utils
import itertools
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import graphql
from aiohttp import web

from tests.fakes.webhook import FakePlatform, Fault

SCHEMA_PATH = Path(__file__).resolve().parents[3] / "shared" / "specs" / "railway" / "schema.json"
if not SCHEMA_PATH.exists():  # the tree may be checked out elsewhere; the specs sit next to it
    SCHEMA_PATH = Path("/work/shared/specs/railway/schema.json")

LIVE = ("SUCCESS", "SLEEPING", "CRASHED")


@cache
def schema() -> graphql.GraphQLSchema:
    data = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return graphql.build_client_schema(data["data"], assume_valid=True)


class FakeRailway(FakePlatform):
    platform = "railway"
    path = "/graphql/v2"
    FAILED = "FAILED"

    def __init__(
        self,
        *,
        account_token: str | None = "railway-account-token",
        project_token: str | None = "railway-project-token",
        project_id: str = "prj-1",
        service_id: str = "svc-1",
        environment_id: str = "env-1",
    ) -> None:
        super().__init__()
        self.account_token = account_token
        self.project_token = project_token
        self.project_id = project_id
        self.service_id = service_id
        self.environment_id = environment_id
        self.deployments: list[dict[str, Any]] = []  # newest first
        self.executions: list[dict[str, Any]] = []  # instance runs, newest first
        self.refuse_runs = False  # answer the runs query with a GraphQL error (its docs do not describe it)
        self.documents: list[tuple[str, dict[str, Any]]] = []
        self.auth_kinds: list[str] = []
        self._clock = itertools.count(1)
        self.tick = timedelta(minutes=1)  # how much later than the newest deployment the next thing is made
        self._time = datetime.min.replace(tzinfo=UTC)  # the latest time handed out: what `Date` says
        self.send_date = True
        self.appear_after: int | None = 1
        self.held_in: str | None = None
        self.before_next_mutation: Callable[[], object] | None = None  # run once, as the next mutation arrives
        self.app.router.add_post(self.path, self._handle)

    @property
    def api_url(self) -> str:
        return self.url + self.path

    def throttle_body(self) -> Any:
        return {"errors": [{"message": "Rate limit exceeded"}], "data": None}

    def throttle_in_answer_next(
        self, *, retry_after: str | None = None, reset: str | None = None, body_contains: str = ""
    ) -> None:
        """The next matching request is refused as Railway refuses one over its rate limit without a 429: HTTP 200
        with a GraphQL error, `Retry-After` only once the window is used up, `X-RateLimit-Reset` when given."""
        headers = {k: v for k, v in (("Retry-After", retry_after), ("X-RateLimit-Reset", reset)) if v is not None}
        body = {"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATE_LIMITED"}}], "data": None}
        self.inject(Fault(200, headers, body, body_contains=body_contains))

    # --- the uniform control surface ---------------------------------------------------------------

    def seed(self, versions: list[str], *, statuses: list[str] | None = None, crashed: tuple[str, ...] = ()) -> None:
        """Deployments oldest to newest; by default the newest is live and the rest REMOVED. A version in
        `crashed` crashed while it was live (a REMOVED one: before it was replaced)."""
        newest = len(versions) - 1
        for index, version in enumerate(versions):
            default = "SUCCESS" if index == newest else "REMOVED"
            status = statuses[index] if statuses is not None else default
            new = self._new(version, status, self.SEEDED_FROM + timedelta(hours=index))
            if status in ("REMOVED", "SUCCESS", "SLEEPING", "CRASHED"):
                run = "CRASHED" if version in crashed or status == "CRASHED" else "RUNNING"
                self.run(new["id"], run, at=new["createdAt"])
            if status == "REMOVED":
                new["statusUpdatedAt"] = (self.SEEDED_FROM + timedelta(hours=index + 1)).isoformat()
                self._stop_runs(new["id"])
            self.deployments.insert(0, new)

    def run(self, deployment_id: str, status: str, *, at: str | None = None) -> None:
        """An instance run of a deployment (Railway lists them newest first)."""
        when = at or self._now().isoformat().replace("+00:00", "Z")
        self.executions.insert(
            0, {"id": str(uuid.uuid4()), "deploymentId": deployment_id, "status": status, "createdAt": when}
        )

    def forget_runs(self) -> None:
        """Railway keeps instance runs for a while only: none listed any more."""
        self.executions.clear()

    def _stop_runs(self, deployment_id: str) -> None:
        for run in self.executions:
            if run["deploymentId"] == deployment_id and run["status"] == "RUNNING":
                run["status"] = "REMOVED"

    def deploy(self, version: str, status: str = "BUILDING") -> str:
        """A deployment made outside the bot (CI pushed a commit), listed at once; returns its id."""
        new = self._new(version, status, self._now())
        self.deployments.insert(0, new)
        return str(new["id"])

    def hold_next_in(self, status: str) -> None:
        """Deployments made from now on stay in `status` (NEEDS_APPROVAL: until someone approves them)."""
        self.held_in = status

    def _plan(self, steps: list[str], fail_as: str | None = None) -> list[str]:
        return [self.held_in] * 10_000 if self.held_in else super()._plan(steps, fail_as)

    def live_version(self) -> str | None:
        live = self._live()
        return live["meta"]["version"] if live else None

    def id_of(self, version: str) -> str:
        return next(d["id"] for d in self.deployments if d["meta"]["version"] == version)

    # --- state -------------------------------------------------------------------------------------

    def _new(self, version: str, status: str, created: datetime, pending: list[str] | None = None) -> dict[str, Any]:
        return {
            "id": str(uuid.uuid4()),
            "status": status,
            "createdAt": created.isoformat().replace("+00:00", "Z"),
            "url": None,
            "staticUrl": f"gateway-{version}.up.railway.app",
            "canRollback": status in ("SUCCESS", "REMOVED", "SLEEPING", "CRASHED"),
            "meta": {"version": version, "commitMessage": f"release {version}"},
            "projectId": self.project_id,
            "serviceId": self.service_id,
            "environmentId": self.environment_id,
            "_pending": pending or [],
        }

    def _now(self) -> datetime:
        self._time = max(self._time, self._newest() + self.tick * next(self._clock))
        return self._time

    def _newest(self) -> datetime:
        newest = max((d["createdAt"] for d in self.deployments), default="2026-11-01T00:00:00Z")
        return datetime.fromisoformat(newest.replace("Z", "+00:00"))

    def _date(self) -> dict[str, str]:
        """The answer's `Date`, on the fake's clock (aiohttp's would be the wall clock's)."""
        now = max(self._time, self._newest())
        return {"Date": email.utils.format_datetime(now, usegmt=True) if self.send_date else ""}

    def _live(self) -> dict[str, Any] | None:
        return next((d for d in self.deployments if d["status"] in LIVE), None)

    def _advance(self, deployment: dict[str, Any]) -> None:
        if not deployment["_pending"]:
            return
        deployment["status"] = deployment["_pending"].pop(0)
        if deployment["status"] == "CRASHED":
            self._stop_runs(deployment["id"])
            for run in self.executions:
                if run["deploymentId"] == deployment["id"]:
                    run["status"] = "CRASHED"
        if deployment["status"] == "SUCCESS":
            deployment["canRollback"] = True
            if not any(r["deploymentId"] == deployment["id"] and r["status"] == "RUNNING" for r in self.executions):
                self.run(deployment["id"], "RUNNING")
            for other in self.deployments:
                if other is not deployment and other["status"] in LIVE:
                    other["status"] = "REMOVED"
                    other["statusUpdatedAt"] = self._now().isoformat().replace("+00:00", "Z")
                    self._stop_runs(other["id"])

    def _find(self, deployment_id: str) -> dict[str, Any]:
        for deployment in self.deployments:
            if deployment["id"] == deployment_id:
                return deployment
        raise graphql.GraphQLError("Deployment not found")

    def _made(self, new: dict[str, Any]) -> None:
        """A deployment Railway made in the background: listed `appear_after` listings later."""
        new["_hidden"] = 10**9 if self.appear_after is None else self.appear_after
        self.deployments.insert(0, new)

    # --- resolvers (graphql-core calls them with the document's arguments) ----------------------

    def _q_deployments(
        self, info: Any, input: dict[str, Any], first: int | None = None, after: str | None = None, **_: Any
    ) -> dict[str, Any]:
        scope = (input.get("projectId"), input.get("serviceId"), input.get("environmentId"))
        if scope != (self.project_id, self.service_id, self.environment_id):
            self.violations.append(f"deployments queried with scope {scope}")
            return {"edges": [], "pageInfo": {"hasNextPage": False, "hasPreviousPage": False}}
        found = [d for d in self.deployments if not d.get("_hidden")]
        for hidden in self.deployments:
            if hidden.get("_hidden") and hidden["_hidden"] < 10**9:
                hidden["_hidden"] -= 1
        status = input.get("status") or {}
        if status.get("in"):
            found = [d for d in found if d["status"] in status["in"]]
        if status.get("notIn"):
            found = [d for d in found if d["status"] not in status["notIn"]]
        if after is not None:  # the cursor is the id of the last deployment of the page before
            ids = [d["id"] for d in found]
            found = found[ids.index(after) + 1 :] if after in ids else []
        page = found[: first or len(found)]
        return {
            "edges": [{"node": d, "cursor": d["id"]} for d in page],
            "pageInfo": {
                "hasNextPage": len(page) < len(found),
                "hasPreviousPage": after is not None,
                "startCursor": page[0]["id"] if page else None,
                "endCursor": page[-1]["id"] if page else None,
            },
        }

    def _q_executions(self, info: Any, input: dict[str, Any] | None = None, first: int | None = None, **_: Any) -> Any:
        scope = ((input or {}).get("serviceId"), (input or {}).get("environmentId"))
        if scope != (self.service_id, self.environment_id):
            self.violations.append(f"deploymentInstanceExecutions queried with scope {scope}")
        if self.refuse_runs:
            raise RuntimeError("Not Authorized")
        page = self.executions[: first or len(self.executions)]
        edges = [{"node": run, "cursor": run["id"]} for run in page]
        return {"edges": edges, "pageInfo": {"hasNextPage": len(page) < len(self.executions), "hasPreviousPage": False}}

    def _q_deployment(self, info: Any, id: str) -> dict[str, Any]:
        found = self._find(id)
        self._advance(found)
        return found

    def _m_restart(self, info: Any, id: str) -> bool:
        found = self._find(id)
        if found["status"] not in LIVE:
            raise graphql.GraphQLError("Deployment is not running")
        self.restarts += 1
        found["status"] = "INITIALIZING"
        found["_pending"] = self._plan(["DEPLOYING", "SUCCESS"], fail_as="CRASHED")
        return True

    def _m_rollback(self, info: Any, id: str) -> bool:
        target = self._find(id)
        if not target["canRollback"]:
            raise graphql.GraphQLError("Deployment cannot be rolled back to")
        new = self._new(target["meta"]["version"], "QUEUED", self._now(), self._plan(["DEPLOYING", "SUCCESS"]))
        new["canRollback"] = False
        self._made(new)
        return True

    def _m_redeploy(self, info: Any, environmentId: str, serviceId: str) -> bool:  # noqa: N803
        if (environmentId, serviceId) != (self.environment_id, self.service_id):
            raise graphql.GraphQLError("Service instance not found")
        latest = self.deployments[0] if self.deployments else None
        version = latest["meta"]["version"] if latest else "v0"
        new = self._new(version, "QUEUED", self._now(), self._plan(["BUILDING", "DEPLOYING", "SUCCESS"]))
        new["canRollback"] = False
        self._made(new)
        return True

    def _m_redeploy_one(self, info: Any, id: str, usePreviousImageTag: bool | None = None) -> dict[str, Any]:  # noqa: N803
        """`deploymentRedeploy`: builds and deploys that deployment again, answering the new `Deployment`."""
        source = self._find(id)
        new = self._new(
            source["meta"]["version"], "QUEUED", self._now(), self._plan(["BUILDING", "DEPLOYING", "SUCCESS"])
        )
        new["canRollback"] = False
        self._made(new)
        return new

    # --- HTTP --------------------------------------------------------------------------------------

    def _authorised(self, request: web.Request) -> bool:
        bearer = request.headers.get("Authorization", "")
        project = request.headers.get("Project-Access-Token")
        if self.account_token and bearer == f"Bearer {self.account_token}":
            self.auth_kinds.append("bearer")
            return True
        if self.project_token and project == self.project_token:
            self.auth_kinds.append("project")
            return True
        return False

    async def _handle(self, request: web.Request) -> web.Response:
        if request.content_type != "application/json":
            return self.violation(f"Content-Type {request.content_type!r}, expected application/json")
        try:
            payload = await request.json()
        except ValueError:
            return self.violation("body is not JSON")
        document = payload.get("query")
        variables = payload.get("variables") or {}
        if not isinstance(document, str):
            return self.violation("no `query` in the body")
        try:
            parsed = graphql.parse(document)
        except graphql.GraphQLError as exc:
            return self.violation(f"syntax error: {exc.message}", body={"errors": [{"message": exc.message}]})
        problems = graphql.validate(schema(), parsed)
        if problems:
            messages = [p.message for p in problems]
            return self.violation(
                "invalid document: " + "; ".join(messages), body={"errors": [{"message": m} for m in messages]}
            )
        self.documents.append((document, variables))
        if self.before_next_mutation is not None and _is_mutation(parsed):
            hook, self.before_next_mutation = self.before_next_mutation, None
            hook()
        if not self._authorised(request):
            return web.json_response(
                {"errors": [{"message": "Not Authorized", "extensions": {"code": "UNAUTHENTICATED"}}], "data": None}
            )
        root = SimpleNamespace(
            deployments=self._q_deployments,
            deployment=self._q_deployment,
            deploymentInstanceExecutions=self._q_executions,
            deploymentRestart=self._m_restart,
            deploymentRollback=self._m_rollback,
            serviceInstanceRedeploy=self._m_redeploy,
            deploymentRedeploy=self._m_redeploy_one,
        )
        result = graphql.graphql_sync(schema(), document, root_value=root, variable_values=variables)
        if result.errors:
            request_errors = [e for e in result.errors if not e.path]
            if request_errors:  # variables that do not fit the schema
                self.violations.append("bad variables: " + "; ".join(e.message for e in request_errors))
            return web.json_response(
                {"errors": [e.formatted for e in result.errors], "data": None}, headers=self._date()
            )
        return web.json_response({"data": result.data}, headers=self._date())


def _is_mutation(document: graphql.DocumentNode) -> bool:
    return any(
        isinstance(d, graphql.OperationDefinitionNode) and d.operation is graphql.OperationType.MUTATION
        for d in document.definitions
    )
