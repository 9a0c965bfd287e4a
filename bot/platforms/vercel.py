"""Vercel, through its REST API (`{VERCEL_API_URL}`, `Authorization: Bearer`, `?teamId=` on every call).

- list: `GET /v6/deployments?projectId=&target=production&limit=` (newest first; the id key is `uid`).
- current: the project's production target (`GET /v9/projects/{id}` → `targets.production.id`),
  or the newest READY production deployment when the project does not say.
- restart: redeploy the live deployment, `POST /v13/deployments?forceNew=1` with
  `{"deploymentId", "name", "target": "production"}`; the new deployment is followed with
  `GET /v13/deployments/{id}` (`readyState`).
- rollback: `POST /v9/projects/{id}/rollback/{deploymentId}` to an older deployment, or
  `POST /v10/projects/{id}/promote/{deploymentId}` to a newer one (undoing an earlier rollback).
  Both carry a JSON body `{}` (the vendor's CLI sends one and marks it required). Instant rollback
  takes only a deployment that served production; one that never did (below) is promoted instead,
  as Vercel documents for a staged build, and the confirmation says so (`Deployment.caveat`).
  While the project is rolled back (`lastRollbackTarget`), a promote also ends that, as Vercel documents
  (https://vercel.com/docs/cli/rollback#undo-a-rollback: it "re-enables auto-assignment of production
  domains"): later pushes go live by themselves again, and the confirmation says so (`caveat`).
  A refusal (402: the plan; 409: another change under way; 400/422: a target it does not take) is
  said in words, with what production still serves. Neither builds
  anything: Vercel moves the production alias, and its progress is the project's
  `lastAliasRequest.jobStatus` (pending, in-progress, succeeded, failed, skipped), which the project
  lookup carries only with `?rollbackInfo=true`. Absent, it means "not known yet", never success.
  A failed job has no reason anywhere Vercel documents (`lastAliasRequest` holds the ids, the type,
  the status and the time): the report says so, names the domains a promote could not move
  (`GET /v1/projects/{id}/promote/aliases?failedOnly=true`), and where to look.
- a redeploy is live only once `targets.production` is it: while the project is rolled back
  (`lastRollbackTarget`), Vercel points production at no new deployment, so it ends not live.
- READY only says the build succeeded. Whether a deployment ever served production is read from the
  fields both the list and the lookup carry: `readySubstate` (STAGED "never seen production traffic",
  PROMOTED "has seen production traffic"), else `aliasError` (aliasing it failed), `aliasAssigned:
  false` or `isRollbackCandidate: false`. One that never served is never a default rollback target;
  a field left out says nothing, so an answer without them keeps every READY deployment a target.
  Vercel documents no time a deployment stopped serving, so `live_until` stays unknown.

`teamId` comes from the service's `vercel.team_id` or `VERCEL_TEAM_ID`; personal accounts have
none and the parameter is then left out.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import Any
from urllib.parse import quote

import httpx

from bot.clock import Clock
from bot.config import VercelTarget
from bot.exceptions import PlatformAuthError, PlatformError, PlatformRateLimited, PlatformUnsure
from bot.platforms.base import (
    Deployment,
    DeployStatus,
    pick_rollback_target,
    typed_as_shown,
)
from bot.platforms.follow import RealTimer, Timer
from bot.platforms.http import DEFAULT_REQUEST_TIMEOUT, Endpoint, json_of
from bot.platforms.reads import action_request, before_sending, snapshot_before_rollback
from bot.platforms.vercel_answers import (
    ALIAS_STATUS,
    NAME,
    deployment_of,
    ending_rollback,
    promotes,
    refusal,
    with_status,
)

PAGE = 100  # deployments Vercel lists at once at most
ALIASES_SHOWN = 10  # failed domains named in a report at most

log = logging.getLogger(__name__)


class VercelPlatform:
    kind = "vercel"
    display_name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        target: VercelTarget,
        token: str | None,
        team_id: str | None = None,
        api_url: str = "https://api.vercel.com",
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        history: int = 20,
        timer: Timer | None = None,
        clock: Clock | None = None,
    ) -> None:
        self.endpoint = Endpoint(http, display_name=NAME, timeout=timeout, clock=clock)
        self.target = target
        self.token = token
        self.team_id = target.team_id or team_id
        self.api_url = api_url.rstrip("/")
        self.history = history
        self.timer: Timer = timer or RealTimer()  # the wait before a read is asked again

    @property
    def _project_path(self) -> str:
        return f"/v9/projects/{quote(self.target.project_id, safe='')}"

    # --- the interface -------------------------------------------------------------------------

    async def current_deployment(self) -> Deployment | None:
        _, _, current = await self._state()
        return current

    async def list_deployments(self, *, limit: int = 10) -> list[Deployment]:
        """Page by page (`pagination.next` is the `until` of the next page): a page holds 100 at most."""
        found: list[Deployment] = []
        until: Any = None
        while len(found) < limit:
            params = {
                "projectId": self.target.project_id,
                "target": "production",
                "limit": min(limit - len(found), PAGE),
            }
            body = await self._json("GET", "/v6/deployments", params={**params, "until": until})
            items = body.get("deployments") if isinstance(body, dict) else None
            if not isinstance(items, list):
                raise PlatformError("Vercel answered the deployment list without `deployments`", platform=NAME)
            found += [deployment_of(item) for item in items if isinstance(item, dict)]
            until = (body.get("pagination") or {}).get("next")
            if not items or until is None:
                break
        return found[:limit]

    async def snapshot(self, *, limit: int = 10) -> tuple[list[Deployment], Deployment | None]:
        project, deployments, current = await self._state(limit)
        if project.get("lastRollbackTarget") and current is not None:
            # Rolled back: sending production to one of these by a promote also ends the rollback.
            deployments = [ending_rollback(d) if promotes(d, current) else d for d in deployments]
        return deployments[:limit], current

    async def restart(self, redeploys: str | None = None) -> Deployment:
        project, _, current = await before_sending(self._state, action="restart", platform=NAME, timer=self.timer)
        if current is None:
            raise PlatformError(self.blocker("restart", deployments=[], current=None), platform=NAME)
        name = current.meta.get("name") or project.get("name") or self.target.project_id
        body = await action_request(
            lambda: self._json(
                "POST",
                "/v13/deployments",
                params={"forceNew": "1"},
                json_body={"deploymentId": current.id, "name": name, "target": "production"},
            )
        )
        if not isinstance(body, dict) or not (body.get("id") or body.get("uid")):
            raise PlatformUnsure(
                "Vercel accepted the redeploy but returned no deployment id",
                platform=NAME,
                reason="Vercel accepted it but returned no deployment id; look for it in the Vercel dashboard",
            )
        new = deployment_of(body)
        return Deployment(
            new.id,
            new.status if new.status is not DeployStatus.UNKNOWN else DeployStatus.QUEUED,
            new.created_at,
            new.url,
            False,
            {**new.meta, "action": "redeploy", "redeploy_of": current.id},
        )

    def restart_deploys(self, deployments: Sequence[Deployment], current: Deployment | None) -> Deployment | None:
        return None

    def blocker(self, action: str, deployments: Sequence[Deployment], current: Deployment | None) -> str:
        """A restart redeploys the live deployment: with none there is nothing to redeploy."""
        if action != "restart" or current is not None:
            return ""
        return f"Vercel project {self.target.project_id} has no live production deployment to redeploy"

    async def rollback(self, target_id: str | None = None) -> Deployment:
        deployments, current = await snapshot_before_rollback(self, target_id, history=self.history, timer=self.timer)
        target = pick_rollback_target(deployments, current, target_id, read=self.canonical_id)
        action = "promote" if promotes(target, current) else "rollback"
        await self._move_production(action, target, current)
        return Deployment(
            target.id,
            DeployStatus.DEPLOYING,
            target.created_at,
            target.url,
            target.can_rollback,
            {**target.meta, "action": action, "from": current.id if current else None},
        )

    async def _move_production(self, action: str, target: Deployment, current: Deployment | None) -> None:
        """Rollback or promote; Vercel's refusal (a plan limit, a target it does not take) said plainly."""
        pid, did = quote(self.target.project_id, safe=""), quote(target.id, safe="")
        path = f"/v10/projects/{pid}/promote/{did}" if action == "promote" else f"/v9/projects/{pid}/rollback/{did}"
        try:
            await action_request(lambda: self._send("POST", path, json_body={}))
        except (PlatformAuthError, PlatformRateLimited, PlatformUnsure):
            raise
        except PlatformError as exc:
            what = "promote" if action == "promote" else "roll production back to"
            live = current.id if current else "nothing"
            raise PlatformError(
                f"Vercel would not {what} {target.id}: {refusal(exc, action)}; production still serves {live}; "
                "nothing changed",
                platform=NAME,
            ) from exc

    def canonical_id(self, typed: str) -> str:
        return typed_as_shown(typed)

    async def deployment_status(self, deployment_id: str) -> Deployment:
        body = await self._json(
            "GET",
            f"/v13/deployments/{quote(deployment_id, safe='')}",
            not_found=f"Vercel has no deployment {deployment_id}",
        )
        if not isinstance(body, dict):
            raise PlatformError("Vercel answered the deployment lookup with an unexpected shape", platform=NAME)
        deployment = deployment_of(body)
        if deployment.status is not DeployStatus.SUCCESS:
            return deployment
        # A READY deployment is live only once the production alias points at it.
        project = await self._project()
        alias = project.get("lastAliasRequest")
        live = (project.get("targets") or {}).get("production") or {}
        live_id = live.get("id") if isinstance(live, dict) else None
        if isinstance(alias, dict) and alias.get("toDeploymentId") == deployment.id:
            job = str(alias.get("jobStatus") or "")
            note = await self._alias_failed(deployment.id, alias, live_id) if job == "failed" else ""
            return with_status(deployment, ALIAS_STATUS.get(job, DeployStatus.DEPLOYING), alias_job=job, note=note)
        if live_id == deployment.id:
            return deployment
        if project.get("lastRollbackTarget") and live_id:
            # After an instant rollback Vercel points production at no new deployment until one is
            # promoted: this one is built and will never serve on its own.
            note = (
                f"it is ready, but production still serves {live_id}: the project is rolled back, and Vercel "
                f"sends production to no new deployment until one is promoted (/rollback to {deployment.id} "
                f"promotes it)"
            )
            return with_status(deployment, DeployStatus.CANCELLED, alias_job="", note=note)
        # Ready, but production does not point at it (yet): not known, never success.
        return with_status(deployment, DeployStatus.UNKNOWN, alias_job="")

    # --- internals -------------------------------------------------------------------------------

    async def _alias_failed(self, target: str, alias: dict[str, Any], live: str | None) -> str:
        """What can be said of a failed alias job. `lastAliasRequest` carries no reason, and nothing else
        Vercel documents does; for a promote, `GET /v1/projects/{id}/promote/aliases?failedOnly=true` lists
        the domains that were not moved (read best-effort: the failure is reported either way)."""
        promote = alias.get("type") == "promote"
        said = [f"Vercel could not move production's domains to {target} (its alias job failed)"]
        if promote and (failed := await self._failed_aliases()):
            said.append("not moved: " + ", ".join(failed))
        if live and live != target:
            said.append(f"production is still {live}")
        command = "vercel promote status" if promote else "vercel rollback status"
        said.append(
            "Vercel's API gives no reason: see the project's deployments in the Vercel dashboard, "
            f"or run `{command}` in the project"
        )
        return "; ".join(said)

    async def _failed_aliases(self) -> list[str]:
        """The domains the last promote could not move, as Vercel lists them; [] when it will not say."""
        path = f"/v1/projects/{quote(self.target.project_id, safe='')}/promote/aliases"
        try:
            body = await self._json("GET", path, params={"failedOnly": "true", "limit": ALIASES_SHOWN})
        except PlatformError as exc:
            log.info("Vercel did not list the failed aliases of %s: %s", self.target.project_id, exc)
            return []
        items = body.get("aliases") if isinstance(body, dict) else None
        names = []
        for item in items if isinstance(items, list) else []:
            alias = item.get("alias") if isinstance(item, dict) else None
            # The API reference gives the alias as a string; Vercel's CLI reads an object with `alias` in it.
            name = alias.get("alias") if isinstance(alias, dict) else alias
            if isinstance(name, str) and name:
                names.append(name)
        return names

    async def _state(self, limit: int = 0) -> tuple[dict[str, Any], list[Deployment], Deployment | None]:
        """The project, its newest production deployments (`history` of them at least) and the live one."""
        project, deployments = await asyncio.gather(
            self._project(), self.list_deployments(limit=max(limit, self.history))
        )
        return project, deployments, await self._current(project, deployments)

    async def _current(self, project: dict[str, Any], deployments: list[Deployment]) -> Deployment | None:
        live = ((project.get("targets") or {}).get("production") or {}) if isinstance(project, dict) else {}
        live_id = live.get("id") if isinstance(live, dict) else None
        if live_id:
            for deployment in deployments:
                if deployment.id == live_id:
                    return deployment
            return await self.deployment_status(str(live_id))
        return next((d for d in deployments if d.status is DeployStatus.SUCCESS), None)

    async def _project(self) -> dict[str, Any]:
        body = await self._json(
            "GET",
            self._project_path,
            params={"rollbackInfo": "true"},  # without it `lastAliasRequest` may be left out
            not_found=f"Vercel has no project {self.target.project_id} (check vercel.project_id and the team)",
        )
        if not isinstance(body, dict):
            raise PlatformError("Vercel answered the project lookup with an unexpected shape", platform=NAME)
        return body

    async def _json(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        not_found: str | None = None,
    ) -> Any:
        response = await self._send(method, path, params=params, json_body=json_body, not_found=not_found)
        return json_of(response, platform=NAME)

    async def _send(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        if not self.token:
            raise PlatformAuthError("VERCEL_TOKEN is not set: the bot cannot act on Vercel", platform=NAME)
        return await self.endpoint.send(
            method,
            self.api_url + path,
            headers={"Authorization": f"Bearer {self.token}"},
            params={**(params or {}), "teamId": self.team_id},
            json_body=json_body,
            not_found=not_found,
        )
