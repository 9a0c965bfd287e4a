"""Kubernetes, through the API server, doing what `kubectl rollout` does.

- list: the ReplicaSets the Deployment owns, newest revision first (annotation
  `deployment.kubernetes.io/revision`); a deployment's id is its revision number ("7"), which
  people may also type as `kubectl rollout history` names it (`rev7`, `revision-7`).
- current: the ReplicaSet whose revision the Deployment carries.
- restart (`kubectl rollout restart`): strategic-merge PATCH of
  `spec.template.metadata.annotations["kubectl.kubernetes.io/restartedAt"]` (RFC 3339 now).
- rollback (`kubectl rollout undo [--to-revision]`): take the target ReplicaSet's pod template,
  drop its `pod-template-hash` label, and JSON-patch it over the Deployment's `spec.template`;
  in the same patch the Deployment's annotations become the ReplicaSet's (its
  `kubernetes.io/change-cause` among them), keeping the Deployment's own bookkeeping ones
  (`ROLLBACK_KEEPS`), as kubectl does, so `rollout history` names the right cause.
  Without a target, the newest revision before the current one.
- status (`kubectl rollout status`): from `metadata.generation` vs `status.observedGeneration`,
  `updatedReplicas`, `replicas`, `availableReplicas` and the `Progressing` condition
  (`ProgressDeadlineExceeded` is a failure).

An old ReplicaSet scaled to zero reads 0 of 0 whether its pods ever became available or not, and
nothing the API keeps tells which: it stays a rollback target, and the confirmation says the bot
cannot tell (`Deployment.caveat`). One still holding pods none of which is available, or with a
`ReplicaFailure` condition, is known not to have run (`doubt`).

restart and rollback return a handle `gen-<generation>` (the revision number is assigned by the
controller later); `deployment_status` accepts handles and revisions, and answers with the
revision once the controller has observed the change.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Any
from urllib.parse import quote

import httpx

from bot.clock import Clock, SystemClock
from bot.config import KubernetesTarget
from bot.exceptions import PlatformAuthError, PlatformError
from bot.platforms.base import Deployment, DeployStatus, pick_rollback_target
from bot.platforms.follow import RealTimer, Timer
from bot.platforms.http import DEFAULT_REQUEST_TIMEOUT, Endpoint, dumps, json_of, parse_time
from bot.platforms.reads import action_request, before_sending

NAME = "Kubernetes"
REVISION = "deployment.kubernetes.io/revision"
RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"
HASH_LABEL = "pod-template-hash"
# Annotations `kubectl rollout undo` never copies from the ReplicaSet: the Deployment keeps its own.
ROLLBACK_KEEPS = frozenset(
    {
        "kubectl.kubernetes.io/last-applied-configuration",
        REVISION,
        "deployment.kubernetes.io/revision-history",
        "deployment.kubernetes.io/desired-replicas",
        "deployment.kubernetes.io/max-replicas",
        "deprecated.deployment.rollback.to",
    }
)
IN_CLUSTER_URL = "https://kubernetes.default.svc"
_REVISION_TYPED = re.compile(r"(?i:rev(?:ision)?)[-_ ]?(\d+)")


class KubernetesPlatform:
    kind = "kubernetes"
    display_name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        target: KubernetesTarget,
        token: str | Callable[[], Awaitable[str | None]] | None,
        api_url: str | None = None,
        clock: Clock | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        timer: Timer | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.endpoint = Endpoint(http, display_name=NAME, timeout=timeout, clock=self.clock)
        self.target = target
        self.token = token
        self.api_url = (api_url or target.api_url or IN_CLUSTER_URL).rstrip("/")
        self.timer: Timer = timer or RealTimer()  # the wait before a read is asked again

    @property
    def _where(self) -> str:
        return f"{self.target.namespace}/{self.target.deployment}"

    @property
    def _apps(self) -> str:
        return f"{self.api_url}/apis/apps/v1/namespaces/{quote(self.target.namespace, safe='')}"

    @property
    def _deployment_url(self) -> str:
        return f"{self._apps}/deployments/{quote(self.target.deployment, safe='')}"

    # --- the interface -------------------------------------------------------------------------

    async def current_deployment(self) -> Deployment | None:
        _, current = await self.snapshot(limit=0)
        return current

    async def list_deployments(self, *, limit: int = 10) -> list[Deployment]:
        deployments, _ = await self.snapshot(limit=limit)
        return deployments

    async def snapshot(self, *, limit: int = 10) -> tuple[list[Deployment], Deployment | None]:
        deployment = await self._get_deployment()
        listed, current = self._listed(deployment, await self._replica_sets(deployment))
        return listed[:limit], current

    async def restart(self, redeploys: str | None = None) -> Deployment:
        deployment = await before_sending(self._get_deployment, action="restart", platform=NAME, timer=self.timer)
        self._refuse_paused(deployment, "restart")
        now = self.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ")
        patch = {"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}}
        updated = await self._patch(patch, "application/strategic-merge-patch+json")
        return self._handle(updated, action="restart")

    def blocker(self, action: str, deployments: Sequence[Deployment], current: Deployment | None) -> str:
        """A paused Deployment rolls out no change to its pod template, a restart's annotation or a rollback's
        template, until it is resumed: either would change nothing (and is refused after the click too)."""
        if not any(d.meta.get("paused") for d in [*deployments, *([current] if current else [])]):
            return ""
        name, namespace = self.target.deployment, self.target.namespace
        return (
            f"Deployment {self._where} is paused, and a paused Deployment does not roll out a {action}; resume it "
            f"with `kubectl rollout resume deployment/{name} -n {namespace}` (its pending changes roll out too), "
            f"then run /{action} again if it is still needed"
        )

    def restart_deploys(self, deployments: Sequence[Deployment], current: Deployment | None) -> Deployment | None:
        return None

    async def rollback(self, target_id: str | None = None) -> Deployment:
        deployment = await before_sending(self._get_deployment, action="rollback", platform=NAME, timer=self.timer)
        self._refuse_paused(deployment, "roll back")

        def sets_of() -> Awaitable[list[dict[str, Any]]]:
            return self._replica_sets(deployment)

        sets = await before_sending(sets_of, action="rollback", platform=NAME, timer=self.timer)
        listed, current = self._listed(deployment, sets)
        target = pick_rollback_target(listed, current, target_id, read=self.canonical_id)
        rs = next(rs for rs in sets if str(_revision(rs)) == target.id)
        template = copy.deepcopy((rs.get("spec") or {}).get("template") or {})
        labels = (template.get("metadata") or {}).get("labels") or {}
        labels.pop(HASH_LABEL, None)
        current_template = (deployment.get("spec") or {}).get("template") or {}
        if _same_template(template, current_template):
            raise PlatformError(
                f"revision {target.id} has the same pod template as the live one: nothing to roll back",
                platform=NAME,
            )
        patch = [
            {"op": "replace", "path": "/spec/template", "value": template},
            _annotations_op(deployment, rs),
        ]
        updated = await self._patch(patch, "application/json-patch+json")
        handle = self._handle(updated, action="rollback")
        return replace(handle, meta={**handle.meta, "rollback_to": target.id})

    def canonical_id(self, typed: str) -> str:
        """`rev7`, `revision-7`, `REVISION 7` (as `kubectl rollout history` names a revision) are `7`."""
        wanted = typed.strip()
        match = _REVISION_TYPED.fullmatch(wanted)
        return match[1] if match else wanted

    async def deployment_status(self, deployment_id: str) -> Deployment:
        deployment = await self._get_deployment()
        revision = str(_revision(deployment))
        generation = int((deployment.get("metadata") or {}).get("generation") or 0)
        status, note = rollout_status(deployment)
        if deployment_id.startswith("gen-"):
            wanted = int(deployment_id.removeprefix("gen-") or 0)
            observed = int((deployment.get("status") or {}).get("observedGeneration") or 0)
            if observed < wanted:
                return Deployment(deployment_id, DeployStatus.QUEUED, meta={"generation": wanted, "note": note})
            return Deployment(revision, status, meta={"generation": generation, "note": note, "revision": revision})
        if deployment_id == revision:
            return Deployment(revision, status, meta={"generation": generation, "note": note, "revision": revision})
        for rs in await self._replica_sets(deployment):
            if str(_revision(rs)) == deployment_id:
                return self._from_replica_set(rs, deployment)
        raise PlatformError(f"Deployment {self._where} has no revision {deployment_id}", platform=NAME)

    # --- internals -------------------------------------------------------------------------------

    def _handle(self, updated: Any, *, action: str) -> Deployment:
        generation = int(((updated or {}).get("metadata") or {}).get("generation") or 0)
        return Deployment(f"gen-{generation}", DeployStatus.QUEUED, self.clock.now(), None, False, {"action": action})

    def _refuse_paused(self, deployment: dict[str, Any], verb: str) -> None:
        if (deployment.get("spec") or {}).get("paused"):
            raise PlatformError(
                f"Deployment {self._where} is paused; resume it (kubectl rollout resume) before you {verb}",
                platform=NAME,
            )

    def _listed(
        self, deployment: dict[str, Any], sets: list[dict[str, Any]]
    ) -> tuple[list[Deployment], Deployment | None]:
        """The ReplicaSets as deployments, and the live one among them."""
        listed = [self._from_replica_set(rs, deployment) for rs in sets]
        live = str(_revision(deployment))
        return listed, next((d for d in listed if d.id == live), None)

    def _from_replica_set(self, rs: dict[str, Any], deployment: dict[str, Any]) -> Deployment:
        revision = str(_revision(rs))
        live = revision == str(_revision(deployment))
        meta_rs = rs.get("metadata") or {}
        containers = (((rs.get("spec") or {}).get("template") or {}).get("spec") or {}).get("containers") or []
        images = [str(c.get("image")) for c in containers if isinstance(c, dict) and c.get("image")]
        status = rollout_status(deployment)[0] if live else DeployStatus.REMOVED
        doubt = "" if live else _never_available(rs)
        caveat = "" if live or doubt else _unknowable(rs, revision)
        return Deployment(
            id=revision,
            status=status,
            created_at=parse_time(meta_rs.get("creationTimestamp")),
            url=None,
            can_rollback=not live,
            doubt=doubt,
            caveat=caveat,
            meta={
                "replicaset": meta_rs.get("name"),
                "image": ", ".join(images),
                "revision": revision,
                # What the blocker reads: it sees deployments, not the Deployment object.
                **({"paused": True} if (deployment.get("spec") or {}).get("paused") else {}),
            },
        )

    async def _get_deployment(self) -> dict[str, Any]:
        response = await self._send(
            "GET", self._deployment_url, not_found=f"Kubernetes has no Deployment {self._where}"
        )
        body = json_of(response, platform=NAME)
        if not isinstance(body, dict):
            raise PlatformError("Kubernetes answered with an unexpected shape", platform=NAME)
        return body

    async def _replica_sets(self, deployment: dict[str, Any]) -> list[dict[str, Any]]:
        """ReplicaSets owned by the Deployment, newest revision first."""
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in sorted(selector.items()))} if selector else None
        response = await self._send("GET", f"{self._apps}/replicasets", params=params)
        body = json_of(response, platform=NAME)
        items = body.get("items") if isinstance(body, dict) else None
        uid = (deployment.get("metadata") or {}).get("uid")
        owned = [
            rs
            for rs in (items or [])
            if isinstance(rs, dict)
            and any(ref.get("uid") == uid for ref in ((rs.get("metadata") or {}).get("ownerReferences") or []))
        ]
        return sorted(owned, key=_revision, reverse=True)

    async def _patch(self, patch: Any, content_type: str) -> Any:
        """The restart or rollback itself (a 429 on it changed nothing: `action_request`)."""
        response = await action_request(
            lambda: self._send(
                "PATCH",
                self._deployment_url,
                content=dumps(patch),
                headers={"Content-Type": content_type},
                not_found=f"Kubernetes has no Deployment {self._where}",
            )
        )
        return json_of(response, platform=NAME)

    async def _send(
        self,
        method: str,
        url: str,
        *,
        params: dict[str, Any] | None = None,
        content: bytes | None = None,
        headers: dict[str, str] | None = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        token = await self.token() if callable(self.token) else self.token
        if not token:
            variable = self.target.token_env or "the service account token"
            raise PlatformAuthError(f"no Kubernetes token: {variable} is not set", platform=NAME)
        return await self.endpoint.send(
            method,
            url,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json", **(headers or {})},
            params=params,
            content=content,
            not_found=not_found,
        )


def rollout_status(deployment: dict[str, Any]) -> tuple[DeployStatus, str]:
    """What `kubectl rollout status` would say, as (status, explanation)."""
    meta = deployment.get("metadata") or {}
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    if int(meta.get("generation") or 0) > int(status.get("observedGeneration") or 0):
        return DeployStatus.QUEUED, "waiting for the rollout to be observed"
    for condition in status.get("conditions") or []:
        if condition.get("type") == "Progressing" and condition.get("reason") == "ProgressDeadlineExceeded":
            return DeployStatus.FAILED, f"progress deadline exceeded: {condition.get('message') or ''}".strip()
    wanted = int(spec.get("replicas", 1) if spec.get("replicas") is not None else 1)
    updated = int(status.get("updatedReplicas") or 0)
    total = int(status.get("replicas") or 0)
    available = int(status.get("availableReplicas") or 0)
    if updated < wanted:
        return DeployStatus.DEPLOYING, f"{updated} of {wanted} new replicas updated"
    if total > updated:
        return DeployStatus.DEPLOYING, f"{total - updated} old replicas pending termination"
    if available < updated:
        return DeployStatus.DEPLOYING, f"{available} of {updated} updated replicas available"
    return DeployStatus.SUCCESS, "successfully rolled out"


def _never_available(rs: dict[str, Any]) -> str:
    """Why an old ReplicaSet is known not to have run healthily, or "".

    A ReplicaSet keeps no history: once scaled to zero its status reads 0 of 0 whether its pods ever
    became available or not, and the Deployment's `Progressing` condition speaks of the newest ReplicaSet
    only. What can be told is what it holds now: pods of which none is available (a rollout stuck on
    ImagePullBackOff or a crash loop, replaced before it was scaled down), or a `ReplicaFailure` condition.
    """
    status = rs.get("status") or {}
    for condition in status.get("conditions") or []:
        if condition.get("type") == "ReplicaFailure" and condition.get("status") == "True":
            return f"its pods could not be created: {condition.get('message') or condition.get('reason') or ''}".strip()
    replicas = int(status.get("replicas") or 0)
    if replicas and not int(status.get("availableReplicas") or 0):
        return f"none of its {replicas} pods became available"
    return ""


def _unknowable(rs: dict[str, Any], revision: str) -> str:
    """The confirmation's warning for a ReplicaSet scaled to zero: nothing the API keeps tells whether its
    pods ever became available (its status reads 0 of 0 either way; its annotations hold the revision and
    replica counts; the Deployment's conditions and `rollout history` speak of no old revision's health)."""
    if int((rs.get("status") or {}).get("replicas") or 0):
        return ""
    return (
        f"the bot cannot tell whether revision {revision} ran healthily: its ReplicaSet is scaled to zero, "
        "and Kubernetes keeps no record of whether its pods ever became available"
    )


def _revision(obj: dict[str, Any]) -> int:
    annotations = (obj.get("metadata") or {}).get("annotations") or {}
    try:
        return int(annotations.get(REVISION) or 0)
    except (TypeError, ValueError):
        return 0


def _annotations_op(deployment: dict[str, Any], rs: dict[str, Any]) -> dict[str, Any]:
    """The Deployment's annotations after an undo: the ReplicaSet's, but its own bookkeeping kept."""
    own = (deployment.get("metadata") or {}).get("annotations")
    theirs = (rs.get("metadata") or {}).get("annotations") or {}
    value = {k: v for k, v in (own or {}).items() if k in ROLLBACK_KEEPS}
    value.update({k: v for k, v in theirs.items() if k not in ROLLBACK_KEEPS})
    return {"op": "replace" if isinstance(own, dict) else "add", "path": "/metadata/annotations", "value": value}


def _same_template(a: dict[str, Any], b: dict[str, Any]) -> bool:
    def clean(template: dict[str, Any]) -> dict[str, Any]:
        template = copy.deepcopy(template)
        (template.get("metadata") or {}).get("labels", {}).pop(HASH_LABEL, None)
        return template

    return clean(a) == clean(b)
