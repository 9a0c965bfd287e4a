"""Railway, through its public GraphQL API (`POST {RAILWAY_API_URL}`).

- current: the newest deployment that went live (`SUCCESS`, `SLEEPING`, or `CRASHED` after
  going live); a `FAILED` build never replaced anything.
- restart: `deploymentRestart(id)` on the live deployment (no rebuild, the fastest fix); when
  nothing is live, `deploymentRedeploy(id)` of the deployment the confirmation named (exactly that
  one, even if a newer one appeared since the click's check), or, named none (nothing deployed yet),
  `serviceInstanceRedeploy(environmentId, serviceId)`, which redeploys whatever is newest.
- rollback: `deploymentRollback(id)` with the chosen earlier deployment; Railway creates a new
  deployment from it, which is what we follow. The mutation answers before the deployment is
  listed, so it is looked for again over some seconds (`APPEAR_DELAYS`), not once at once; one
  listed meanwhile but created before the mutation was sent (CI's) is not it (`railway_answers`).
- status: `deployment(id) { status }`.

Auth: `Authorization: Bearer` for account/team tokens, `Project-Access-Token` for project
tokens. With `RAILWAY_TOKEN_KIND=auto` the client tries Bearer first and, when Railway refuses
it, the project header, then remembers what worked. Mutations answer `Boolean!` (no selection),
except `deploymentRedeploy`, which answers the new `Deployment`.
GraphQL errors arrive as HTTP 200 with `errors`; they become PlatformError subclasses.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.clock import Clock, SystemClock
from bot.config import RailwayTarget
from bot.exceptions import ConfigError, PlatformAuthError, PlatformError, PlatformRateLimited, PlatformUnsure
from bot.platforms.base import (
    Deployment,
    DeployStatus,
    pick_rollback_target,
    typed_as_shown,
)
from bot.platforms.follow import RealTimer, Timer
from bot.platforms.http import DEFAULT_REQUEST_TIMEOUT, Endpoint, json_of, parse_time
from bot.platforms.railway_answers import (
    ThrottledInAnswer,
    cannot_tell,
    graphql_error,
    judged,
    made_before,
    only_earlier,
    sent_at,
    unsure_which,
)
from bot.platforms.reads import before_sending, not_sent, snapshot_before_rollback

log = logging.getLogger(__name__)

NAME = "Railway"

_FIELDS = "id status createdAt statusUpdatedAt url staticUrl canRollback meta"

DEPLOYMENTS = f"""
query Deployments($input: DeploymentListInput!, $first: Int, $after: String) {{
  deployments(input: $input, first: $first, after: $after) {{
    edges {{ node {{ {_FIELDS} }} }}
    pageInfo {{ hasNextPage endCursor }}
  }}
}}
"""
PAGE = 25  # deployments asked for at a time: a rollback may look back ROLLBACK_LOOKBACK of them

# A REMOVED deployment was replaced, but Railway keeps no status history: one that CRASHED before it was
# replaced is REMOVED too, and `canRollback` only says its image is still kept. What may tell is the
# service's instance runs (`deploymentInstanceExecutions`), which Railway's schema has and its docs do not
# describe. So they are read best-effort, in a request of their own: a deployment whose newest listed run
# CRASHED is not a default rollback target (it can still be picked by ID); a deployment with no run listed,
# or a runs query Railway refuses, leaves the choice as it was (the newest replaced deployment). Unknown
# is not treated as unhealthy: that would leave every rollback without a default if Railway lists no
# runs for ordinary services.
RUNS = """
query Runs($input: DeploymentInstanceExecutionListInput!, $first: Int) {
  deploymentInstanceExecutions(input: $input, first: $first) { edges { node { deploymentId status createdAt } } }
}
"""
RUNS_READ = 100

DEPLOYMENT = f"""
query Deployment($id: String!) {{
  deployment(id: $id) {{ {_FIELDS} }}
}}
"""

RESTART = """
mutation Restart($id: String!) {
  deploymentRestart(id: $id)
}
"""

ROLLBACK = """
mutation Rollback($id: String!) {
  deploymentRollback(id: $id)
}
"""

REDEPLOY_ONE = f"""
mutation RedeployOne($id: String!) {{
  deploymentRedeploy(id: $id) {{ {_FIELDS} }}
}}
"""

REDEPLOY = """
mutation Redeploy($environmentId: String!, $serviceId: String!) {
  serviceInstanceRedeploy(environmentId: $environmentId, serviceId: $serviceId)
}
"""

_STATUS = {
    "QUEUED": DeployStatus.QUEUED,
    "WAITING": DeployStatus.QUEUED,
    "INITIALIZING": DeployStatus.QUEUED,
    "NEEDS_APPROVAL": DeployStatus.QUEUED,
    "BUILDING": DeployStatus.BUILDING,
    "DEPLOYING": DeployStatus.DEPLOYING,
    "SUCCESS": DeployStatus.SUCCESS,
    "SLEEPING": DeployStatus.SUCCESS,
    "FAILED": DeployStatus.FAILED,
    "CRASHED": DeployStatus.FAILED,
    "REMOVED": DeployStatus.REMOVED,
    "REMOVING": DeployStatus.REMOVED,
    "SKIPPED": DeployStatus.CANCELLED,
}
LIVE = ["SUCCESS", "SLEEPING", "CRASHED"]
# Statuses before the build that wait on something other than Railway's queue. Shown as "queued" alone,
# ten minutes of NEEDS_APPROVAL read as Railway being slow while it waited for a person to approve it.
_WAITING_NOTES = {
    "NEEDS_APPROVAL": "waiting for approval: someone must approve this deployment in Railway",
    "WAITING": "Railway holds it as WAITING, not queued to build yet: see why in Railway",
}
TOKEN_KINDS = ("auto", "bearer", "project")  # RAILWAY_TOKEN_KIND

# Seconds between looks for the deployment a rollback/redeploy made (about 15 s in all).
APPEAR_DELAYS = (0.5, 1.0, 2.0, 4.0, 8.0)


class RailwayPlatform:
    kind = "railway"
    display_name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        target: RailwayTarget,
        token: str | None,
        api_url: str = "https://backboard.railway.com/graphql/v2",
        token_kind: str = "auto",
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        history: int = 20,
        timer: Timer | None = None,
        clock: Clock | None = None,
    ) -> None:
        if token_kind not in TOKEN_KINDS:
            raise ConfigError(f"RAILWAY_TOKEN_KIND: must be auto, bearer or project (got {token_kind!r})")
        self.clock = clock or SystemClock()
        self.endpoint = Endpoint(http, display_name=NAME, timeout=timeout, clock=self.clock)
        self.target = target
        self.token = token
        self.api_url = api_url
        self.token_kind = token_kind
        self.history = history
        self.timer: Timer = timer or RealTimer()

    # --- the interface -------------------------------------------------------------------------

    async def current_deployment(self) -> Deployment | None:
        found = await self._deployments(first=1, statuses=LIVE)
        return found[0] if found else None

    async def list_deployments(self, *, limit: int = 10) -> list[Deployment]:
        return await self._deployments(first=limit)

    async def snapshot(self, *, limit: int = 10) -> tuple[list[Deployment], Deployment | None]:
        deployments, current, runs = await asyncio.gather(
            self.list_deployments(limit=limit), self.current_deployment(), self._last_runs()
        )
        return judged(deployments, runs), current

    async def restart(self, redeploys: str | None = None) -> Deployment:
        if redeploys is not None:  # nothing was live: this one, not whatever is newest by now
            return await self._redeploy(redeploys)
        current = await before_sending(self.current_deployment, action="restart", platform=NAME, timer=self.timer)
        if current is None:
            listed = await before_sending(self._newest, action="restart", platform=NAME, timer=self.timer)
            before = {d.id for d in listed}
            sent = await self._mutate(
                REDEPLOY,
                {"environmentId": self.target.environment_id, "serviceId": self.target.service_id},
                "serviceInstanceRedeploy",
            )
            return await self._new_deployment(before, action="redeploy", sent=sent)
        await self._mutate(RESTART, {"id": current.id}, "deploymentRestart")
        return replace(current, status=DeployStatus.QUEUED, meta={**current.meta, "action": "restart"})

    def blocker(self, action: str, deployments: Sequence[Deployment], current: Deployment | None) -> str:
        return ""

    def restart_deploys(self, deployments: Sequence[Deployment], current: Deployment | None) -> Deployment | None:
        """With nothing live, a restart builds and deploys the newest deployment again (`deploymentRedeploy`
        of this one), whatever became of it: often the very build that failed."""
        return deployments[0] if current is None and deployments else None

    async def rollback(self, target_id: str | None = None) -> Deployment:
        deployments, current = await snapshot_before_rollback(self, target_id, history=self.history, timer=self.timer)
        target = pick_rollback_target(deployments, current, target_id, read=self.canonical_id)
        sent = await self._mutate(ROLLBACK, {"id": target.id}, "deploymentRollback")
        new = await self._new_deployment({d.id for d in deployments}, action="rollback", sent=sent)
        return replace(new, meta={**new.meta, "rollback_to": target.id})

    def canonical_id(self, typed: str) -> str:
        return typed_as_shown(typed)

    async def deployment_status(self, deployment_id: str) -> Deployment:
        data = await self._query(DEPLOYMENT, {"id": deployment_id})
        node = data.get("deployment")
        if not isinstance(node, dict):
            raise PlatformError(f"Railway has no deployment {deployment_id}", platform=NAME)
        return _deployment(node)

    # --- internals -------------------------------------------------------------------------------

    async def _deployments(self, *, first: int, statuses: list[str] | None = None) -> list[Deployment]:
        scope = self._scope()
        if statuses:
            scope["status"] = {"in": statuses}
        found: list[Deployment] = []
        after: str | None = None
        while len(found) < first:
            variables = {"input": scope, "first": min(PAGE, first - len(found)), "after": after}
            page = (await self._query(DEPLOYMENTS, variables)).get("deployments") or {}
            edges = page.get("edges") or []
            found += [_deployment(edge["node"]) for edge in edges if isinstance(edge, dict) and edge.get("node")]
            info = page.get("pageInfo") or {}
            after = info.get("endCursor")
            if not edges or not info.get("hasNextPage") or not after:
                break
        return found[:first]

    async def _newest(self) -> list[Deployment]:
        return await self._deployments(first=5)

    async def _last_runs(self) -> dict[str, str]:
        """Each deployment's newest instance run status, as far as Railway lists them; {} when it will not say."""
        variables = {"input": {"serviceId": self.target.service_id, "environmentId": self.target.environment_id}}
        try:
            data = await self._query(RUNS, {**variables, "first": RUNS_READ})
        except PlatformError as exc:  # best-effort (see RUNS): the rollback is chosen as before
            log.info("Railway did not list the instance runs of %s: %s", self.target.service_id, exc)
            return {}
        nodes = [e.get("node") for e in (data.get("deploymentInstanceExecutions") or {}).get("edges") or []]
        runs = sorted(
            (n for n in nodes if isinstance(n, dict) and n.get("deploymentId")),
            key=lambda n: parse_time(n.get("createdAt")) or datetime.min.replace(tzinfo=UTC),
        )
        return {str(n["deploymentId"]): str(n.get("status") or "") for n in runs}  # the newest run wins

    def _scope(self) -> dict[str, Any]:
        return {
            "projectId": self.target.project_id,
            "serviceId": self.target.service_id,
            "environmentId": self.target.environment_id,
        }

    async def _redeploy(self, deployment_id: str) -> Deployment:
        """`deploymentRedeploy` answers the deployment it made, so there is nothing to look for after it."""
        node = (await self._write(REDEPLOY_ONE, {"id": deployment_id}))[0].get("deploymentRedeploy")
        if not isinstance(node, dict) or not node.get("id"):
            raise PlatformError(f"Railway did not accept deploymentRedeploy (answered {node!r})", platform=NAME)
        new = _deployment(node)
        return replace(new, meta={**new.meta, "action": "redeploy", "redeploy_of": deployment_id})

    async def _new_deployment(self, before: set[str], *, action: str, sent: datetime | None) -> Deployment:
        """The deployment Railway created for a redeploy/rollback: a new one made after the mutation was sent.

        Railway answers the mutation first and lists the deployment a moment later, and another deploy (CI's)
        may be listed before it: one made before `sent` is never followed, and the looks go on for it (see
        `railway_answers` for what tells them apart, and what the report says when nothing does).
        A look that fails (throttled, a 5xx, an error in Railway's words) is one more look that found nothing:
        the mutation was accepted, so its failure must not reach the caller as a refusal, nor as a rate limit.
        """
        missed = "lists no new deployment yet"
        for delay in (0.0, *APPEAR_DELAYS):
            if delay:
                await self.timer.sleep(delay)
            try:
                listed = await self._deployments(first=5)
            except PlatformError as exc:
                missed = f"did not answer when asked for it ({exc})"
                continue
            new = [d for d in listed if d.id not in before]
            earlier = made_before(new, sent)
            made = [d for d in new if d not in earlier]
            if made:
                compared = sent is not None and made[0].created_at is not None
                doubt = unsure_which(made, action) or ("" if compared else cannot_tell(made[0], action))
                return replace(made[0], meta={**made[0].meta, "action": action}, unsure_which=doubt)
            missed = only_earlier(earlier, action) if earlier else "lists no new deployment yet"
        reason = f"Railway accepted it but {missed}; watch it in the Railway dashboard"
        message = f"Railway accepted the {action} but {missed}; watch it in the Railway dashboard"
        raise PlatformUnsure(message, platform=NAME, reason=reason)

    async def _write(self, document: str, variables: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """A restart, rollback or redeploy, with its answer's `Date`: a rate limit Railway reports inside a 200 is
        said, never sent again by the bot (see ThrottledInAnswer); only a 429 is (PlatformThrottledNotSent)."""
        try:
            return await self._answer(document, variables)
        except ThrottledInAnswer as exc:
            raise PlatformError(str(exc), platform=NAME) from exc
        except PlatformRateLimited as exc:  # a 429: Railway refused it without acting
            raise not_sent(exc) from exc

    async def _mutate(self, document: str, variables: dict[str, Any], field: str) -> datetime | None:
        """Send a mutation answering `Boolean!`; the earliest moment (Railway's clock) it can have reached Railway."""
        started = self.timer.monotonic()
        data, date = await self._write(document, variables)
        if data.get(field) is not True:
            raise PlatformError(f"Railway did not accept {field} (answered {data.get(field)!r})", platform=NAME)
        return sent_at(date, round_trip=self.timer.monotonic() - started)

    async def _query(self, document: str, variables: dict[str, Any]) -> dict[str, Any]:
        return (await self._answer(document, variables))[0]

    async def _answer(self, document: str, variables: dict[str, Any]) -> tuple[dict[str, Any], str | None]:
        """The answer's data and its `Date` header."""
        if not self.token:
            raise PlatformAuthError("RAILWAY_TOKEN is not set: the bot cannot act on Railway", platform=NAME)
        kinds = [self.token_kind] if self.token_kind != "auto" else ["bearer", "project"]
        for index, kind in enumerate(kinds):
            try:
                answer = await self._post(document, variables, kind)
            except PlatformAuthError:
                if index + 1 < len(kinds):
                    continue
                if self.token_kind == "auto":
                    raise PlatformAuthError(
                        "Railway refused RAILWAY_TOKEN both as an account/team token and as a project "
                        "token; check it is valid and can see this project",
                        platform=NAME,
                    ) from None
                raise
            if self.token_kind == "auto":
                self.token_kind = kind  # remember what works
            return answer
        raise AssertionError("unreachable")  # pragma: no cover

    async def _post(self, document: str, variables: dict[str, Any], kind: str) -> tuple[dict[str, Any], str | None]:
        assert self.token is not None
        headers = {"Content-Type": "application/json"}
        if kind == "project":
            headers["Project-Access-Token"] = self.token
        else:
            headers["Authorization"] = f"Bearer {self.token}"
        response = await self.endpoint.send(
            "POST", self.api_url, headers=headers, json_body={"query": document, "variables": variables}
        )
        body = json_of(response, platform=NAME)
        if not isinstance(body, dict):
            raise PlatformError("Railway answered with an unexpected shape", platform=NAME)
        errors = body.get("errors")
        if errors:
            raise graphql_error(errors, headers=response.headers, now=self.clock.now())
        data = body.get("data")
        if not isinstance(data, dict):
            raise PlatformError("Railway answered without data", platform=NAME)
        return data, response.headers.get("Date")


def _deployment(node: dict[str, Any]) -> Deployment:
    raw = str(node.get("status") or "")
    raw_meta = node.get("meta")
    meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    url = node.get("url") or node.get("staticUrl")
    if url and "://" not in url:
        url = f"https://{url}"
    status = _STATUS.get(raw, DeployStatus.UNKNOWN)
    return Deployment(
        id=str(node["id"]),
        status=status,
        created_at=parse_time(node.get("createdAt")),
        url=url,
        can_rollback=bool(node.get("canRollback")),
        meta={**meta, "platform_status": raw, **({"note": _WAITING_NOTES[raw]} if raw in _WAITING_NOTES else {})},
        # REMOVED is final: its status last changed when it was replaced.
        live_until=parse_time(node.get("statusUpdatedAt")) if status is DeployStatus.REMOVED else None,
    )
