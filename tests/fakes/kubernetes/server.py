"""A local Kubernetes API server for one Deployment, with a tiny Deployment controller.

Routes: `GET|PATCH /apis/apps/v1/namespaces/{ns}/deployments/{name}` and
`GET /apis/apps/v1/namespaces/{ns}/replicasets?labelSelector=`. PATCH accepts
`application/strategic-merge-patch+json` (a merge of maps) and `application/json-patch+json`
(RFC 6902 add/replace/remove); other content types get 415 and a violation. Requests need
`Authorization: Bearer <token>` (401 Status otherwise).

As the real controller does, a ReplicaSet carries the Deployment's annotations (the
`kubernetes.io/change-cause` of its rollout among them, minus the controller's own), so an undo
that leaves the Deployment's annotations as they were is visible in `change_cause()`.

The controller acts on each GET of the Deployment: it observes a new generation, finds or makes
the ReplicaSet for the pod template (an old one is re-used and gets the next revision, as in
Kubernetes), then brings `updatedReplicas` and `availableReplicas` up one step at a time, or
sets `Progressing=False, ProgressDeadlineExceeded` for an injected failure.
"""

from __future__ import annotations

import copy
import json
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web

from tests.fakes.kubernetes.objects import (
    CHANGE_CAUSE,
    NOT_COPIED,
    REVISION,
    merge,
    pointer,
    status_body,
    strip_hash,
    template_hash,
)
from tests.fakes.webhook import FakePlatform


class FakeKubernetes(FakePlatform):
    platform = "kubernetes"

    def __init__(self, *, token: str = "k8s-token", namespace: str = "prod", name: str = "api", replicas: int = 2):
        super().__init__()
        self.token = token
        self.namespace = namespace
        self.name = name
        self.replicas = replicas
        self.uid = "uid-deploy-api"
        self.replica_sets: list[dict[str, Any]] = []
        self.deployment: dict[str, Any] = self._empty_deployment()
        self.patches: list[tuple[str, Any]] = []
        self._steps: list[dict[str, Any]] = []
        base = "/apis/apps/v1/namespaces/{ns}"
        self.app.router.add_get(base + "/deployments/{name}", self._get)
        self.app.router.add_patch(base + "/deployments/{name}", self._patch)
        self.app.router.add_get(base + "/replicasets", self._replicasets)

    def throttle_body(self) -> Any:
        return status_body(429, "TooManyRequests", "Too many requests, please try again later.")

    # --- control surface ----------------------------------------------------------------------------

    def seed(self, versions: list[str]) -> None:
        for index, version in enumerate(versions):
            template = self._template(version)
            rs = self._make_rs(template, revision=index + 1, created=self.SEEDED_FROM + timedelta(hours=index))
            rs["metadata"]["annotations"][CHANGE_CAUSE] = f"deploy {version}"
        self.deployment["spec"]["template"] = self._template(versions[-1])
        self.deployment["metadata"]["annotations"][CHANGE_CAUSE] = f"deploy {versions[-1]}"
        self.deployment["metadata"]["annotations"][REVISION] = str(len(versions))
        self.deployment["metadata"]["generation"] = len(versions)
        self.deployment["status"] = {
            "observedGeneration": len(versions),
            "replicas": self.replicas,
            "updatedReplicas": self.replicas,
            "readyReplicas": self.replicas,
            "availableReplicas": self.replicas,
            "conditions": [
                {"type": "Available", "status": "True"},
                {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"},
            ],
        }
        # A ReplicaSet with the same labels owned by someone else: the client must filter by owner.
        stray = self._template("stray")
        self.replica_sets.append(
            {
                "metadata": {
                    "name": "api-stray",
                    "namespace": self.namespace,
                    "uid": "uid-stray",
                    "labels": {"app": self.name},
                    "annotations": {REVISION: "99"},
                    "creationTimestamp": "2026-10-01T00:00:00Z",
                    "ownerReferences": [{"kind": "Deployment", "name": "other", "uid": "uid-other"}],
                },
                "spec": {"replicas": 0, "template": stray},
            }
        )

    def change_cause(self) -> str | None:
        return self.deployment["metadata"]["annotations"].get(CHANGE_CAUSE)

    def live_version(self) -> str | None:
        image = self.deployment["spec"]["template"]["spec"]["containers"][0]["image"]
        return image.rsplit(":", 1)[1]

    def id_of(self, version: str) -> str:
        for rs in self._owned():
            if rs["spec"]["template"]["spec"]["containers"][0]["image"].endswith(f":{version}"):
                return rs["metadata"]["annotations"][REVISION]
        raise KeyError(version)

    # --- the objects ----------------------------------------------------------------------------------

    def _empty_deployment(self) -> dict[str, Any]:
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "uid": self.uid,
                "generation": 1,
                "annotations": {},
                "labels": {"app": self.name},
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name}},
                "template": {},
                "progressDeadlineSeconds": 600,
            },
            "status": {},
        }

    def _template(self, version: str) -> dict[str, Any]:
        return {
            "metadata": {"labels": {"app": self.name}},
            "spec": {"containers": [{"name": self.name, "image": f"registry.example.com/{self.name}:{version}"}]},
        }

    def _owned(self) -> list[dict[str, Any]]:
        return [
            rs
            for rs in self.replica_sets
            if any(o.get("uid") == self.uid for o in rs["metadata"].get("ownerReferences", []))
        ]

    def _make_rs(self, template: dict[str, Any], *, revision: int, created: datetime) -> dict[str, Any]:
        clean = strip_hash(template)
        digest = template_hash(clean)
        labelled = copy.deepcopy(clean)
        labelled.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = digest
        rs = {
            "apiVersion": "apps/v1",
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{self.name}-{digest}",
                "namespace": self.namespace,
                "uid": f"uid-rs-{digest}",
                "labels": {"app": self.name, "pod-template-hash": digest},
                "annotations": {REVISION: str(revision)},
                "creationTimestamp": created.isoformat().replace("+00:00", "Z"),
                "ownerReferences": [
                    {
                        "apiVersion": "apps/v1",
                        "kind": "Deployment",
                        "name": self.name,
                        "uid": self.uid,
                        "controller": True,
                    }
                ],
            },
            "spec": {
                "replicas": self.replicas,
                "selector": {"matchLabels": {"app": self.name, "pod-template-hash": digest}},
                "template": labelled,
            },
        }
        self.replica_sets.append(rs)
        return rs

    def _rollout_started(self) -> None:
        """The template changed: plan what the controller shows on the next GETs."""
        meta = self.deployment["metadata"]
        meta["generation"] += 1
        generation = meta["generation"]
        old = self.deployment["status"].get("observedGeneration", 0)
        full = self.replicas
        observe = {"observedGeneration": generation, "updatedReplicas": 0, "replicas": full, "availableReplicas": full}
        outcome = self._next_outcome()
        if outcome == "stall":
            self._steps = [{"observedGeneration": old}] + [observe] * 10_000
            return
        if outcome == "fail":
            failed = {
                **observe,
                "updatedReplicas": 1,
                "replicas": full + 1,
                "conditions": [
                    {
                        "type": "Progressing",
                        "status": "False",
                        "reason": "ProgressDeadlineExceeded",
                        "message": f'ReplicaSet "{self.name}" has timed out progressing.',
                    }
                ],
            }
            self._steps = [{"observedGeneration": old}, observe, failed]
            return
        self._steps = [
            {"observedGeneration": old},
            observe,
            {**observe, "updatedReplicas": 1, "replicas": full + 1, "availableReplicas": full},
            {**observe, "updatedReplicas": full, "replicas": full + 1, "availableReplicas": full},
            {
                **observe,
                "updatedReplicas": full,
                "replicas": full,
                "availableReplicas": full,
                "conditions": [{"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable"}],
            },
        ]

    def _controller_step(self) -> None:
        if not self._steps:
            return
        step = self._steps.pop(0)
        status = self.deployment["status"]
        first_observation = step.get("observedGeneration") == self.deployment["metadata"]["generation"] and (
            status.get("observedGeneration") != step["observedGeneration"]
        )
        status.update(step)
        if first_observation:
            self._adopt_template()

    def _adopt_template(self) -> None:
        template = strip_hash(self.deployment["spec"]["template"])
        owned = self._owned()
        top = max(int(rs["metadata"]["annotations"][REVISION]) for rs in owned) if owned else 0
        for rs in owned:
            if strip_hash(rs["spec"]["template"]) == template:
                break  # rollback re-uses the old ReplicaSet
        else:
            newest = max((rs["metadata"]["creationTimestamp"] for rs in owned), default="2026-11-01T00:00:00Z")
            created = datetime.fromisoformat(newest.replace("Z", "+00:00")) + timedelta(minutes=5)
            rs = self._make_rs(template, revision=top + 1, created=created)
        copied = {k: v for k, v in self.deployment["metadata"]["annotations"].items() if k not in NOT_COPIED}
        rs["metadata"]["annotations"] = {**copied, REVISION: str(top + 1)}
        self.deployment["metadata"]["annotations"][REVISION] = str(top + 1)

    # --- HTTP ----------------------------------------------------------------------------------------

    def _check(self, request: web.Request) -> web.Response | None:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response(status_body(401, "Unauthorized", "Unauthorized"), status=401)
        if request.match_info.get("ns") != self.namespace:
            return self.violation(
                f"namespace {request.match_info.get('ns')!r}",
                status=404,
                body=status_body(404, "NotFound", "namespace not found"),
            )
        name = request.match_info.get("name")
        if name is not None and name != self.name:
            return web.json_response(status_body(404, "NotFound", f'deployments.apps "{name}" not found'), status=404)
        return None

    async def _get(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        self._controller_step()
        return web.json_response(self.deployment)

    async def _patch(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        content_type = request.headers.get("Content-Type", "")
        try:
            patch = json.loads(await request.read())
        except ValueError:
            return self.violation("PATCH body is not JSON", status=400, body=status_body(400, "BadRequest", "bad JSON"))
        patchers = {
            "application/strategic-merge-patch+json": self._strategic_merge,
            "application/json-patch+json": self._json_patch,
        }
        apply = patchers.get(content_type)
        if apply is None:
            return self.violation(
                f"PATCH with Content-Type {content_type!r}",
                status=415,
                body=status_body(415, "UnsupportedMediaType", "unsupported media type"),
            )
        before = copy.deepcopy(self.deployment["spec"]["template"])
        updated = copy.deepcopy(self.deployment)
        if (refused := apply(updated, patch)) is not None:
            return refused
        self.patches.append((content_type, patch))
        self.deployment = updated
        if updated["spec"]["template"] != before:
            self._rollout_started()
        return web.json_response(self.deployment)

    def _strategic_merge(self, updated: dict[str, Any], patch: Any) -> web.Response | None:
        """Merge ``patch`` into ``updated`` (what kubectl rollout restart sends); a response when refused."""
        if not isinstance(patch, dict):
            return self.violation(
                "strategic merge patch is not an object", status=400, body=status_body(400, "BadRequest", "bad patch")
            )
        merge(updated, patch)
        annotations = patch.get("spec", {}).get("template", {}).get("metadata", {}).get("annotations", {})
        if "kubectl.kubernetes.io/restartedAt" in annotations:
            self.restarts += 1
            stamp = annotations["kubectl.kubernetes.io/restartedAt"]
            try:
                datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ")
            except ValueError:
                self.violations.append(f"restartedAt {stamp!r} is not RFC 3339 UTC")
        return None

    def _json_patch(self, updated: dict[str, Any], patch: Any) -> web.Response | None:
        """Apply RFC 6902 ops to ``updated`` (what kubectl rollout undo sends); a response when refused."""
        if not isinstance(patch, list):
            return self.violation(
                "JSON patch is not a list", status=400, body=status_body(400, "BadRequest", "bad patch")
            )
        try:
            for op in patch:
                self._apply(updated, op)
        except (ValueError, KeyError, TypeError) as exc:
            return self.violation(f"JSON patch failed: {exc}", status=422, body=status_body(422, "Invalid", str(exc)))
        labels = updated["spec"]["template"].get("metadata", {}).get("labels", {})
        if "pod-template-hash" in labels:
            self.violations.append("rollback template still carries pod-template-hash")
        return None

    @staticmethod
    def _apply(doc: dict[str, Any], op: dict[str, Any]) -> None:
        parts = pointer(op["path"])
        parent: Any = doc
        for part in parts[:-1]:
            parent = parent[int(part)] if isinstance(parent, list) else parent[part]
        last = parts[-1]
        kind = op["op"]
        if kind in ("add", "replace"):
            if kind == "replace" and last not in parent:
                raise KeyError(f"replace of missing {op['path']}")
            parent[last] = copy.deepcopy(op["value"])
        elif kind == "remove":
            del parent[last]
        elif kind == "test":
            if parent.get(last) != op["value"]:
                raise ValueError(f"test failed at {op['path']}")
        else:
            raise ValueError(f"unsupported op {kind!r}")

    async def _replicasets(self, request: web.Request) -> web.Response:
        if (refused := self._check(request)) is not None:
            return refused
        selector = request.query.get("labelSelector", "")
        wanted = dict(part.split("=", 1) for part in selector.split(",") if "=" in part)
        items = [rs for rs in self.replica_sets if all(rs["metadata"]["labels"].get(k) == v for k, v in wanted.items())]
        return web.json_response({"kind": "ReplicaSetList", "apiVersion": "apps/v1", "metadata": {}, "items": items})
