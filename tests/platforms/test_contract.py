"""One contract, four platforms: every client behaves the same against its fake.

The fakes refuse what the real APIs refuse (the Railway one executes each document against the
published GraphQL schema); the `env` fixture fails a test that left a violation behind.
"""

from __future__ import annotations

import time
from datetime import timedelta
from email.utils import format_datetime

import pytest

from bot.clock import FakeClock
from bot.exceptions import (
    NotFound,
    PlatformAuthError,
    PlatformError,
    PlatformRateLimited,
    PlatformThrottledNotSent,
    PlatformTimeout,
)
from bot.platforms.base import DeployStatus, rollback_candidates
from bot.platforms.follow import Progress, follow
from tests.fakes.webhook import Fault
from tests.platforms.helpers import Env, FakeTimer, number_ids


async def _follow(env: Env, handle, timer: FakeTimer, *, deadline: float = 120.0, seen: list[Progress] | None = None):
    async def on_progress(update: Progress) -> None:
        if seen is not None:
            seen.append(update)

    return await follow(env.client, handle, deadline=deadline, on_progress=on_progress, timer=timer, interval=3.0)


async def test_lists_newest_first_with_the_live_one_on_top(env: Env) -> None:
    deployments = await env.client.list_deployments(limit=10)
    current = await env.client.current_deployment()

    assert current is not None
    assert [d.id for d in deployments] == [env.fake.id_of(v) for v in ("v3", "v2", "v1")]
    assert deployments[0].id == current.id
    assert current.status is DeployStatus.SUCCESS
    assert [d.id for d in rollback_candidates(deployments, current)] == [env.fake.id_of("v2"), env.fake.id_of("v1")]


async def test_snapshot_reads_list_and_live_one_without_repeating_requests(env: Env) -> None:
    deployments = await env.client.list_deployments(limit=2)
    current = await env.client.current_deployment()
    before = len(env.fake.requests)
    snapshot = await env.client.snapshot(limit=2)

    assert snapshot == (deployments, current)
    # At most the list's requests plus the live one's; what both need (Kubernetes: the Deployment and
    # its ReplicaSets, Vercel: the deployment list) is read once. Railway also reads its instance runs, in a
    # request of their own so that an error there costs nothing else (bot/platforms/railway.py, RUNS).
    assert len(env.fake.requests) - before <= (3 if env.kind == "railway" else 2)


async def test_limit_is_honoured(env: Env) -> None:
    assert len(await env.client.list_deployments(limit=2)) == 2


async def test_restart_is_followed_to_success(env: Env, timer: FakeTimer) -> None:
    seen: list[Progress] = []
    handle = await env.client.restart()
    result = await _follow(env, handle, timer, seen=seen)

    assert result.succeeded, result
    assert env.fake.restarts == 1
    assert env.fake.live_version() == "v3"  # a restart keeps the code
    steps = [p.status.step for p in seen]
    assert steps == sorted(steps), f"progress went backwards: {[p.status for p in seen]}"
    assert seen[-1].status is DeployStatus.SUCCESS
    assert seen[-1].elapsed.total_seconds() > seen[0].elapsed.total_seconds()


async def test_rollback_without_target_goes_to_the_previous_good_deployment(env: Env, timer: FakeTimer) -> None:
    handle = await env.client.rollback(None)
    result = await _follow(env, handle, timer)

    assert result.succeeded, result
    assert env.fake.live_version() == "v2"


async def test_rollback_to_a_given_deployment(env: Env, timer: FakeTimer) -> None:
    handle = await env.client.rollback(env.fake.id_of("v1"))
    result = await _follow(env, handle, timer)

    assert result.succeeded, result
    assert env.fake.live_version() == "v1"
    assert (await env.client.current_deployment()) is not None


async def test_rollback_to_the_live_deployment_is_refused(env: Env) -> None:
    current = await env.client.current_deployment()
    assert current is not None
    with pytest.raises(NotFound, match="already the live one"):
        await env.client.rollback(current.id)


async def test_rollback_to_an_unknown_id_is_refused(env: Env) -> None:
    with pytest.raises(NotFound, match="not among"):
        await env.client.rollback("no-such-deployment-id")


# Only Kubernetes people name a deployment `rev1` or `revision-1` (`kubectl rollout history`).
SPELLS_REVISIONS = {"kubernetes"}


async def test_a_revision_as_kubectl_names_it_is_read_only_by_kubernetes(env: Env, timer: FakeTimer) -> None:
    """The shared picker read `rev1` as deployment `1` on every platform: on a deploy tool whose ids are
    build numbers, `/rollback billing rev1` went to build 1."""
    number_ids(env.fake)
    kubectl = env.kind in SPELLS_REVISIONS
    for typed in ("rev1", "revision-1", "REVISION 1", " Rev_1 "):
        assert env.client.canonical_id(typed) == ("1" if kubectl else typed.strip())
    assert env.client.canonical_id(" 1 ") == "1"

    if not kubectl:
        with pytest.raises(NotFound, match="deployment rev1 is not among"):
            await env.client.rollback("rev1")
        assert env.fake.live_version() == "v3"
    result = await _follow(env, await env.client.rollback("revision-1" if kubectl else "1"), timer)

    assert result.succeeded, result
    assert env.fake.live_version() == "v1"


async def test_a_deploy_that_fails_is_reported_failed(env: Env, timer: FakeTimer) -> None:
    env.fake.fail_next_deploy()
    handle = await env.client.rollback(None)
    result = await _follow(env, handle, timer)

    assert not result.succeeded
    assert result.status is DeployStatus.FAILED
    assert not result.timed_out


async def test_a_restart_that_fails_is_reported_failed(env: Env, timer: FakeTimer) -> None:
    env.fake.fail_next_deploy()
    result = await _follow(env, await env.client.restart(), timer)

    assert result.status is DeployStatus.FAILED


async def test_a_deploy_that_never_finishes_stops_at_the_deadline(env: Env, timer: FakeTimer) -> None:
    env.fake.stall()
    handle = await env.client.restart()
    start = timer.monotonic()
    result = await _follow(env, handle, timer, deadline=30.0)

    assert result.timed_out and not result.succeeded
    assert 30.0 <= timer.monotonic() - start <= 33.0
    assert result.status in (DeployStatus.QUEUED, DeployStatus.BUILDING, DeployStatus.DEPLOYING)


async def test_429_becomes_rate_limited_with_retry_after(env: Env) -> None:
    env.fake.throttle_next(30)  # longer than a read waits out (a short one is asked again: test_not_started.py)
    with pytest.raises(PlatformRateLimited) as caught:
        await env.client.restart()

    assert caught.value.retry_after == 30
    assert "30 s" in str(caught.value)
    assert env.client.display_name in str(caught.value)
    assert env.fake.restarts == 0
    # Met before anything was sent (a read first; the webhook's first request is the restart itself).
    assert isinstance(caught.value, PlatformThrottledNotSent)


# The one request that restarts, as each fake tells it apart from the reads around it.
RESTART_REQUEST = {
    "railway": Fault(429, {"Retry-After": "45"}, body_contains="deploymentRestart"),
    "vercel": Fault(429, {"Retry-After": "45"}, path_contains="/v13/deployments", method="POST"),
    "kubernetes": Fault(429, {"Retry-After": "45"}, method="PATCH"),
    "webhook": Fault(429, {"Retry-After": "45"}, body_contains='"action":"restart"'),
}


async def test_a_429_on_the_restart_request_itself_says_it_was_not_sent(env: Env) -> None:
    """The contract the bot re-sends on: only PlatformThrottledNotSent may be sent again; a plain rate limit
    out of restart() may have come after the restart was sent."""
    env.fake.inject(RESTART_REQUEST[env.kind])
    with pytest.raises(PlatformThrottledNotSent) as caught:
        await env.client.restart()

    assert caught.value.retry_after == 45
    assert env.fake.restarts == 0


async def test_a_429_until_an_http_date_is_counted_from_the_injected_clock(env: Env) -> None:
    """The date was counted from the wall clock: with the bot's clock elsewhere (a test's, or a host whose
    clock the bot does not use), a wait of 90 s read as none, and the read was asked again at once."""
    clock = FakeClock()
    client = env.make(clock=clock)
    env.fake.throttle_next(format_datetime(clock.now() + timedelta(seconds=90), usegmt=True))
    with pytest.raises(PlatformRateLimited) as caught:
        await client.restart()

    assert caught.value.retry_after == 90
    assert "try again in 90 s" in str(caught.value)
    assert env.fake.restarts == 0


async def test_a_429_with_only_a_reset_time_waits_until_the_reset(env: Env) -> None:
    """Railway sends `X-RateLimit-Reset` on every answer, and a 429 may carry it alone: it was read only on a
    rate limit inside a 200, so a 429 said "in a minute" however soon the window reset."""
    clock = FakeClock()
    client = env.make(clock=clock)
    reset = str(int(clock.now().timestamp()) + 40)
    env.fake.inject(Fault(429, {"X-RateLimit-Reset": reset}, env.fake.throttle_body()))
    with pytest.raises(PlatformRateLimited) as caught:
        await client.restart()

    assert caught.value.retry_after == 40
    assert "try again in 40 s" in str(caught.value)
    assert env.fake.restarts == 0


async def test_429_while_following_waits_as_told_and_carries_on(env: Env, timer: FakeTimer) -> None:
    seen: list[Progress] = []
    handle = await env.client.restart()
    env.fake.throttle_next(12)
    result = await _follow(env, handle, timer, seen=seen)

    assert result.succeeded
    assert 12 in timer.sleeps
    assert any("rate-limiting" in p.note for p in seen)


async def test_refused_credentials_become_an_auth_error(env: Env) -> None:
    client = env.make(token="wrong-token")
    with pytest.raises(PlatformAuthError) as caught:
        await client.restart()

    assert "wrong-token" not in str(caught.value)
    assert env.fake.restarts == 0


async def test_refused_credentials_while_following_end_the_watch(env: Env, timer: FakeTimer) -> None:
    handle = await env.client.restart()
    with pytest.raises(PlatformAuthError):
        await follow(env.make(token="wrong-token"), handle, deadline=60, timer=timer)


async def test_a_hanging_platform_becomes_a_timeout(env: Env) -> None:
    env.fake.hang_next(10)
    client = env.make(timeout=0.3)
    started = time.perf_counter()
    with pytest.raises(PlatformTimeout, match="did not answer within 0.3 s"):
        await client.list_deployments()
    assert time.perf_counter() - started < 2.0


async def test_a_server_error_is_a_platform_error_with_the_status(env: Env) -> None:
    env.fake.inject(Fault(502, {}, {"error": "bad gateway"}))
    with pytest.raises(PlatformError, match="HTTP 502") as caught:
        await env.client.list_deployments()
    assert not isinstance(caught.value, (PlatformAuthError, PlatformRateLimited))
