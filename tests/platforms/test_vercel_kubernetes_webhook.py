"""Vercel, Kubernetes and webhook specifics the shared contract does not reach."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.clock import FakeClock
from bot.config import KubernetesTarget, WebhookTarget
from bot.exceptions import PlatformAuthError, PlatformError
from bot.platforms.base import DeployStatus
from bot.platforms.follow import follow
from bot.platforms.kubernetes import KubernetesPlatform, rollout_status
from bot.platforms.webhook import WebhookPlatform, sign, verify
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.vercel import FakeVercel
from tests.fakes.webhook import SECRET, FakeWebhook
from tests.platforms.helpers import FakeTimer, client_for

# --- Vercel ---------------------------------------------------------------------------------------


@pytest.fixture
async def vercel() -> AsyncIterator[FakeVercel]:
    fake = FakeVercel()
    await fake.start()
    fake.seed(["v1", "v2", "v3"])
    yield fake
    await fake.stop()


async def test_vercel_sends_team_id_on_every_call(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    client = client_for("vercel", vercel, http)
    await follow(client, await client.rollback(None), deadline=60, timer=FakeTimer())
    await follow(client, await client.restart(), deadline=60, timer=FakeTimer())

    assert vercel.requests and all(r.query.get("teamId") == "team_test" for r in vercel.requests)
    assert not vercel.violations


async def test_vercel_without_the_team_is_refused_by_the_fake(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    client = client_for("vercel", vercel, http, team_id=None)
    with pytest.raises(PlatformAuthError):
        await client.list_deployments()
    assert vercel.violations and "teamId=None" in vercel.violations[0]


async def test_vercel_redeploy_sends_the_documented_body(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    client = client_for("vercel", vercel, http)
    live = vercel.id_of("v3")
    handle = await client.restart()

    create = next(r for r in vercel.requests if r.method == "POST")
    assert create.path == "/v13/deployments" and create.query["forceNew"] == "1"
    assert create.json() == {"deploymentId": live, "name": "web", "target": "production"}
    assert handle.status is DeployStatus.QUEUED


async def test_vercel_rolling_forward_again_is_a_promote(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    client = client_for("vercel", vercel, http)
    await follow(client, await client.rollback(vercel.id_of("v1")), deadline=60, timer=FakeTimer())
    assert vercel.live_version() == "v1"

    handle = await client.rollback(vercel.id_of("v3"))
    result = await follow(client, handle, deadline=60, timer=FakeTimer())

    posts = [r.path for r in vercel.requests if r.method == "POST"]
    assert posts[0].startswith("/v9/projects/prj_web/rollback/")
    assert posts[1] == f"/v10/projects/prj_web/promote/{vercel.id_of('v3')}"
    assert result.succeeded and vercel.live_version() == "v3"


async def test_vercel_rollback_is_live_only_when_the_alias_job_succeeded(
    vercel: FakeVercel, http: httpx.AsyncClient
) -> None:
    client = client_for("vercel", vercel, http)
    handle = await client.rollback(None)

    first = await client.deployment_status(handle.id)  # READY, alias job in progress
    second = await client.deployment_status(handle.id)

    assert first.status is DeployStatus.DEPLOYING and first.meta["alias_job"] == "in-progress"
    assert second.status is DeployStatus.SUCCESS


async def test_vercel_rollback_and_promote_post_the_json_body_the_cli_sends(
    vercel: FakeVercel, http: httpx.AsyncClient
) -> None:
    client = client_for("vercel", vercel, http)
    await follow(client, await client.rollback(vercel.id_of("v1")), deadline=60, timer=FakeTimer())
    await follow(client, await client.rollback(vercel.id_of("v3")), deadline=60, timer=FakeTimer())

    posts = [r for r in vercel.requests if r.method == "POST"]
    assert [r.path.split("/")[4] for r in posts] == ["rollback", "promote"]
    assert all(r.json() == {} and r.headers["Content-Type"] == "application/json" for r in posts)
    assert not vercel.violations


async def test_vercel_progress_asks_for_the_rollback_info(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    """Without `?rollbackInfo=true` Vercel leaves `lastAliasRequest` out, and the job read as done."""
    client = client_for("vercel", vercel, http)
    handle = await client.rollback(None)
    await client.deployment_status(handle.id)

    lookups = [r for r in vercel.requests if r.method == "GET" and r.path == "/v9/projects/prj_web"]
    assert lookups and all(r.query.get("rollbackInfo") == "true" for r in lookups)


async def test_vercel_an_absent_alias_job_is_unknown_never_success(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    client = client_for("vercel", vercel, http)
    handle = await client.rollback(None)
    vercel.last_alias_request = None  # the project answered without the field

    status = await client.deployment_status(handle.id)

    assert status.status is DeployStatus.UNKNOWN and vercel.live_version() == "v3"


async def test_vercel_a_skipped_alias_job_is_not_a_success(vercel: FakeVercel, http: httpx.AsyncClient) -> None:
    client = client_for("vercel", vercel, http)
    vercel.skip_next_alias()
    result = await follow(client, await client.rollback(None), deadline=60, timer=FakeTimer())

    assert not result.succeeded and result.status is DeployStatus.CANCELLED
    assert result.deployment.meta["alias_job"] == "skipped" and vercel.live_version() == "v3"


# --- Kubernetes -----------------------------------------------------------------------------------


@pytest.fixture
async def k8s() -> AsyncIterator[FakeKubernetes]:
    fake = FakeKubernetes()
    await fake.start()
    fake.seed(["v1", "v2", "v3"])
    yield fake
    await fake.stop()


async def test_kubernetes_restart_patches_the_restarted_at_annotation(
    k8s: FakeKubernetes, http: httpx.AsyncClient
) -> None:
    clock = FakeClock(datetime(2026, 11, 20, 3, 4, 5, tzinfo=UTC))
    client = client_for("kubernetes", k8s, http, clock=clock)
    await client.restart()

    content_type, patch = k8s.patches[-1]
    assert content_type == "application/strategic-merge-patch+json"
    assert patch == {
        "spec": {
            "template": {"metadata": {"annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-20T03:04:05Z"}}}
        }
    }


async def test_kubernetes_undo_json_patches_the_template_without_the_hash(
    k8s: FakeKubernetes, http: httpx.AsyncClient
) -> None:
    client = client_for("kubernetes", k8s, http)
    handle = await client.rollback(None)

    content_type, patch = k8s.patches[-1]
    assert content_type == "application/json-patch+json"
    assert [op["path"] for op in patch] == ["/spec/template", "/metadata/annotations"]
    assert "pod-template-hash" not in patch[0]["value"]["metadata"]["labels"]
    assert patch[0]["value"]["spec"]["containers"][0]["image"].endswith(":v2")
    assert handle.id.startswith("gen-")

    result = await follow(client, handle, deadline=60, timer=FakeTimer())
    assert result.succeeded and result.deployment.id == "4"  # v2's ReplicaSet became revision 4
    assert [d.id for d in await client.list_deployments()] == ["4", "3", "1"]


async def test_kubernetes_undo_restores_the_change_cause_as_kubectl_does(
    k8s: FakeKubernetes, http: httpx.AsyncClient
) -> None:
    """`kubectl rollout undo` copies the ReplicaSet's annotations back; leaving them, `rollout history`
    calls the rolled-back revision "deploy v3" and the Deployment says it runs v3's change."""
    k8s.deployment["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    client = client_for("kubernetes", k8s, http)
    result = await follow(client, await client.rollback(None), deadline=60, timer=FakeTimer())

    assert result.succeeded and k8s.live_version() == "v2"
    assert k8s.change_cause() == "deploy v2"
    annotations = k8s.deployment["metadata"]["annotations"]
    assert annotations["kubectl.kubernetes.io/last-applied-configuration"] == "{}"  # the Deployment's own, kept
    assert annotations["deployment.kubernetes.io/revision"] == "4"
    rs_causes = {
        rs["metadata"]["annotations"]["deployment.kubernetes.io/revision"]: rs["metadata"]["annotations"].get(
            "kubernetes.io/change-cause"
        )
        for rs in k8s._owned()
    }
    assert rs_causes["4"] == "deploy v2" and rs_causes["3"] == "deploy v3"


async def test_kubernetes_takes_a_revision_as_kubectl_names_it(k8s: FakeKubernetes, http: httpx.AsyncClient) -> None:
    client = client_for("kubernetes", k8s, http)
    for typed in ("1", "rev1", "REV1", "revision-1", "Revision 1", "rev_1", " rev1 "):
        assert client.canonical_id(typed) == "1", typed
    for typed in ("rev", "revision-", "rev1a", "1rev", "prev1"):
        assert client.canonical_id(typed) == typed  # not a revision: left to be refused as unknown

    result = await follow(client, await client.rollback("revision-1"), deadline=60, timer=FakeTimer())
    assert result.succeeded and k8s.live_version() == "v1"


async def test_kubernetes_refuses_a_paused_deployment(k8s: FakeKubernetes, http: httpx.AsyncClient) -> None:
    k8s.deployment["spec"]["paused"] = True
    client = client_for("kubernetes", k8s, http)
    with pytest.raises(PlatformError, match="paused"):
        await client.restart()
    assert not k8s.patches


async def test_kubernetes_without_a_token_says_which_variable(http: httpx.AsyncClient) -> None:
    client = KubernetesPlatform(
        http,
        target=KubernetesTarget(
            namespace="prod", deployment="api", api_url="http://127.0.0.1:9", token_env="K8S_TOKEN"
        ),
        token=None,
    )
    with pytest.raises(PlatformAuthError, match="K8S_TOKEN is not set"):
        await client.current_deployment()


def _observed(**status: object) -> dict:
    """A Deployment of 3 replicas whose generation 5 the controller has observed, with this status."""
    return {"metadata": {"generation": 5}, "spec": {"replicas": 3}, "status": {"observedGeneration": 5, **status}}


@pytest.mark.parametrize(
    ("deployment", "expected"),
    [
        ({"metadata": {"generation": 5}, "status": {"observedGeneration": 4}}, DeployStatus.QUEUED),
        (_observed(updatedReplicas=1, replicas=3, availableReplicas=3), DeployStatus.DEPLOYING),
        (_observed(updatedReplicas=3, replicas=4, availableReplicas=3), DeployStatus.DEPLOYING),
        (_observed(updatedReplicas=3, replicas=3, availableReplicas=2), DeployStatus.DEPLOYING),
        (_observed(updatedReplicas=3, replicas=3, availableReplicas=3), DeployStatus.SUCCESS),
        (
            _observed(
                updatedReplicas=1,
                conditions=[{"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded"}],
            ),
            DeployStatus.FAILED,
        ),
        (
            {"metadata": {"generation": 2}, "spec": {"replicas": 0}, "status": {"observedGeneration": 2}},
            DeployStatus.SUCCESS,
        ),
    ],
)
def test_rollout_status_reads_like_kubectl(deployment: dict, expected: DeployStatus) -> None:
    assert rollout_status(deployment)[0] is expected


# --- webhook --------------------------------------------------------------------------------------


def test_signature_is_hmac_sha256_of_the_raw_body() -> None:
    body = b'{"action":"restart"}'
    signature = sign("s3cret", body)

    assert signature.startswith("sha256=") and len(signature) == 7 + 64
    assert verify("s3cret", body, signature)
    assert not verify("s3cret", body + b" ", signature)
    assert not verify("other", body, signature)
    assert not verify("s3cret", body, None)


async def test_webhook_request_carries_signed_timestamp_and_request_id(http: httpx.AsyncClient) -> None:
    async with FakeWebhook() as fake:
        fake.seed(["v1", "v2"])
        client = client_for("webhook", fake, http)
        await client.restart()

        seen = fake.requests[-1]
        body = seen.json()
        assert verify(SECRET, seen.body, seen.headers["X-Signature-256"])
        assert seen.headers["X-Timestamp"] == str(body["timestamp"])
        assert seen.headers["X-Request-Id"] == body["request_id"]
        assert body["action"] == "restart" and body["service"] == "billing"
        assert json.loads(seen.body) == body


async def test_webhook_with_its_secret_variable_unset_refuses_to_send(http: httpx.AsyncClient) -> None:
    async with FakeWebhook() as fake:
        client = WebhookPlatform(
            http,
            service="billing",
            target=WebhookTarget(url=fake.hook_url, secret_env="DEPLOY_WEBHOOK_SECRET"),
            secret=None,
        )
        with pytest.raises(PlatformAuthError, match="DEPLOY_WEBHOOK_SECRET is not set"):
            await client.restart()
        assert fake.requests == []


async def test_webhook_receiver_refuses_a_stale_timestamp(http: httpx.AsyncClient) -> None:
    clock = FakeClock(datetime(2020, 1, 1, tzinfo=UTC))
    async with FakeWebhook() as fake:
        fake.seed(["v1"])
        client = client_for("webhook", fake, http, clock=clock)
        with pytest.raises(PlatformAuthError):
            await client.current_deployment()


async def test_webhook_optional_health_fields_count_only_when_well_formed(http: httpx.AsyncClient) -> None:
    """`healthy` must be a JSON false and `replaced_at` a time; anything else says nothing."""
    async with FakeWebhook() as fake:
        fake.seed(["v1", "v2", "v3"])
        v1, v2 = (next(d for d in fake.deployments if d["meta"]["version"] == v) for v in ("v1", "v2"))
        v2.update(healthy="false", replaced_at="soon")  # a string, and not a time
        v1.update(healthy=False, unhealthy_reason="  OOM-killed\n every few minutes ")
        client = client_for("webhook", fake, http)
        deployments = {d.id: d for d in await client.list_deployments()}

        assert deployments[fake.id_of("v2")].doubt == "" and deployments[fake.id_of("v2")].live_until is None
        assert deployments[fake.id_of("v1")].doubt == "OOM-killed every few minutes"
        assert deployments[fake.id_of("v1")].live_until == fake.SEEDED_FROM + timedelta(hours=1)
