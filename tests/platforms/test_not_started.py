"""A restart or rollback reads what is live before it acts: an unclear failure of that read (a 5xx, no answer)
means nothing was sent, and says so (PlatformNotStarted), unlike a failure of the action itself, which may
have started it (PlatformUnsure). Said "it may have started", the on-call engineer checked dashboards for a
restart that never happened, and hesitated to run it again.

A passing failure of such a read is first asked once more, by the rule of every read around a restart or
rollback (`bot.platforms.reads`): only a second failure in a row is reported."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.exceptions import PlatformNotStarted, PlatformUnsure
from tests.fakes.webhook import Fault
from tests.platforms.helpers import Env, FakeTimer

# A fault on the reads only: never on the restart or rollback itself.
READS = {
    "railway": Fault(503, {}, {"errors": [{"message": "upstream timed out"}]}, body_contains="query Deployments("),
    "vercel": Fault(503, {}, {"error": {"code": "internal_server_error", "message": "oops"}}, method="GET"),
    "kubernetes": Fault(503, {}, {"kind": "Status", "message": "etcdserver: request timed out"}, method="GET"),
    "webhook": Fault(503, {}, {"error": "database unavailable"}, body_contains='"list"'),
}
# The restart itself.
RESTARTS = {
    "railway": {"body_contains": "deploymentRestart"},
    "vercel": {"path_contains": "/v13/deployments", "method": "POST"},
    "kubernetes": {"method": "PATCH"},
    "webhook": {"body_contains": '"restart"'},
}


def _persisting(env: Env) -> None:
    """Enough faults that the read fails when asked again too (some platforms read two things at once)."""
    for _ in range(4):
        env.fake.inject(replace(READS[env.kind]))


async def test_a_server_error_reading_before_a_rollback_is_asked_once_more(env: Env, timer: FakeTimer) -> None:
    """The rollback's own read of the deployments: one 503 refused a rollback the click had just confirmed."""
    env.fake.inject(replace(READS[env.kind]))

    deployment = await env.make(timer=timer).rollback()

    assert deployment.meta.get("rollback_to") or deployment.meta.get("action") in ("rollback", "promote")
    assert timer.sleeps[:1] == [1.0], timer.sleeps


async def test_a_server_error_reading_before_a_restart_is_asked_once_more(env: Env, timer: FakeTimer) -> None:
    env.fake.inject(replace(READS[env.kind]))

    await env.make(timer=timer).restart()

    assert env.fake.restarts == 1
    if env.kind != "webhook":  # its restart reads nothing first: the fault waits for a later read
        assert timer.sleeps[:1] == [1.0], timer.sleeps


async def test_a_short_throttle_reading_before_a_restart_is_waited_out(env: Env, timer: FakeTimer) -> None:
    if env.kind == "webhook":
        return  # its restart reads nothing first
    throttled = replace(READS[env.kind], status=429, headers={"Retry-After": "4"})
    if env.kind == "railway":  # Railway throttles inside a 200 too, its reset in a header
        throttled = replace(throttled, status=200, body={"errors": [{"message": "Rate limit exceeded"}], "data": None})
    env.fake.inject(throttled)

    await env.make(timer=timer).restart()

    assert env.fake.restarts == 1
    assert timer.sleeps[:1] == [4.0], timer.sleeps


async def test_a_server_error_reading_before_a_rollback_says_nothing_was_sent(env: Env) -> None:
    _persisting(env)

    with pytest.raises(PlatformNotStarted, match="HTTP 503") as caught:
        await env.client.rollback()

    assert "rollback was not sent" in str(caught.value), caught.value
    assert env.fake.live_version() == "v3"


async def test_a_server_error_reading_before_a_restart_says_nothing_was_sent(env: Env) -> None:
    _persisting(env)

    if env.kind == "webhook":  # its restart reads nothing first (the request is the restart): the fault never hits
        await env.client.restart()
        assert env.fake.restarts == 1
        return
    with pytest.raises(PlatformNotStarted, match="HTTP 503"):
        await env.client.restart()

    assert env.fake.restarts == 0


async def test_no_answer_to_the_read_before_a_restart_says_nothing_was_sent(env: Env) -> None:
    env.fake.hang_next(5.0)

    if env.kind == "webhook":  # its first request is the restart itself: unanswered, it may have started
        with pytest.raises(PlatformUnsure) as caught:
            await env.make(timeout=0.3).restart()
        assert not isinstance(caught.value, PlatformNotStarted)
        return
    with pytest.raises(PlatformNotStarted, match="no answer within 0.3 s"):
        await env.make(timeout=0.3).restart()

    assert env.fake.restarts == 0


async def test_an_answer_lost_after_the_restart_was_sent_may_still_have_started_it(env: Env) -> None:
    env.fake.lose_answer_next(**RESTARTS[env.kind])

    with pytest.raises(PlatformUnsure) as caught:
        await env.client.restart()

    assert not isinstance(caught.value, PlatformNotStarted)
    assert env.fake.restarts == 1
