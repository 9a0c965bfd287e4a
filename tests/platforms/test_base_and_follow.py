"""The shared plumbing: rollback choice, error mapping, Retry-After, and follow() with a scripted platform."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest

from bot.exceptions import NotFound, PlatformAuthError, PlatformError, PlatformRateLimited, PlatformTimeout
from bot.platforms.base import Deployment, DeployStatus, pick_rollback_target, rollback_candidates
from bot.platforms.follow import Progress, follow
from bot.platforms.http import parse_time, raise_for_status, retry_after
from tests.platforms.helpers import FakeTimer

S, F, R = DeployStatus.SUCCESS, DeployStatus.FAILED, DeployStatus.REMOVED


def _d(id: str, status: DeployStatus, can: bool = True) -> Deployment:
    return Deployment(id, status, can_rollback=can)


# --- choosing a rollback target ---------------------------------------------------------------------


def test_rollback_skips_failed_and_unrollbackable_deployments() -> None:
    deployments = [_d("d5", F, False), _d("d4", S), _d("d3", F, False), _d("d2", R, False), _d("d1", R)]
    current = deployments[1]

    assert pick_rollback_target(deployments, current).id == "d1"
    assert [d.id for d in rollback_candidates(deployments, current)] == ["d1"]


def test_rollback_considers_only_deployments_older_than_the_live_one() -> None:
    deployments = [_d("new", S), _d("live", S), _d("old", R)]
    assert pick_rollback_target(deployments, deployments[1]).id == "old"


def test_rollback_with_nothing_older_names_the_problem() -> None:
    deployments = [_d("live", S), _d("broken", F, False)]
    with pytest.raises(NotFound, match="no earlier successful deployment"):
        pick_rollback_target(deployments, deployments[0])


def test_rollback_target_may_be_given_by_a_unique_prefix() -> None:
    deployments = [_d("aaaa1111-live", S), _d("bbbb2222-old", R)]
    assert pick_rollback_target(deployments, deployments[0], "bbbb22").id == "bbbb2222-old"
    with pytest.raises(NotFound):
        pick_rollback_target(deployments, deployments[0], "bbb")  # too short to be a prefix


def test_the_shared_picker_compares_ids_as_given_an_exact_one_first() -> None:
    """How a person spells an id is each platform's `canonical_id` (Kubernetes reads `rev1` as `1`,
    tests/platforms/test_contract.py); the shared picker took `revision-1` as `1` for every platform."""
    deployments = [_d("3", S), _d("rev2", R), _d("2", R), _d("1", R)]
    assert pick_rollback_target(deployments, deployments[0], "rev2").id == "rev2"
    assert pick_rollback_target(deployments, deployments[0], "1").id == "1"
    for typed in ("revision-1", "REV1", "rev1"):
        with pytest.raises(NotFound, match="not among"):
            pick_rollback_target(deployments, deployments[0], typed)


def test_rollback_refuses_a_target_that_cannot_be_rolled_back_to() -> None:
    deployments = [_d("live", S), _d("broken", F, False)]
    with pytest.raises(NotFound, match="cannot be rolled back to"):
        pick_rollback_target(deployments, deployments[0], "broken")


# --- HTTP errors ----------------------------------------------------------------------------------


def _response(status: int, *, json: object = None, text: str = "", headers: dict[str, str] | None = None):
    request = httpx.Request("GET", "https://api.example.com/x")
    if json is not None:
        return httpx.Response(status, json=json, headers=headers, request=request)
    return httpx.Response(status, text=text, headers=headers, request=request)


@pytest.mark.parametrize(
    ("response", "error", "words"),
    [
        (_response(401, json={"error": {"message": "invalid token"}}), PlatformAuthError, "invalid token"),
        (_response(403, json={"message": "Forbidden"}), PlatformAuthError, "credentials"),
        (_response(429, headers={"Retry-After": "30"}), PlatformRateLimited, "in 30 s"),
        (_response(429), PlatformRateLimited, "in a minute"),
        (_response(503, text="<html>oops</html>"), PlatformError, r"internal error \(HTTP 503\)"),
        (_response(422, json={"errors": [{"message": "bad id"}]}), PlatformError, "bad id"),
    ],
)
def test_http_errors_become_clear_platform_errors(response: httpx.Response, error: type, words: str) -> None:
    with pytest.raises(error, match=words) as caught:
        raise_for_status(response, platform="Acme", now=datetime.now(UTC))
    assert "Traceback" not in str(caught.value) and "<html>" not in str(caught.value)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    now = datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert retry_after("12", now=now) == 12
    assert retry_after(None, now=now) is None
    assert retry_after("soon", now=now) is None
    assert retry_after(format_datetime(now + timedelta(seconds=90), usegmt=True), now=now) == 90


def test_parse_time_handles_iso_and_epoch_milliseconds() -> None:
    assert parse_time("2026-11-20T09:00:00Z") == datetime(2026, 11, 20, 9, tzinfo=UTC)
    assert parse_time(1_790_000_000_000) == datetime.fromtimestamp(1_790_000_000, UTC)
    assert parse_time("not a date") is None and parse_time(None) is None


# --- follow() -------------------------------------------------------------------------------------


class Scripted:
    """A platform whose status answers come from a list (exceptions are raised)."""

    kind = "scripted"
    display_name = "Scripted"

    def __init__(self, answers: Sequence[object]) -> None:
        self.answers = list(answers)
        self.polls = 0

    async def deployment_status(self, deployment_id: str) -> Deployment:
        self.polls += 1
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        assert isinstance(answer, DeployStatus)
        return Deployment(deployment_id, answer)


async def _run(platform: Scripted, timer: FakeTimer, deadline: float = 600.0) -> tuple[object, list[Progress]]:
    seen: list[Progress] = []

    async def collect(update: Progress) -> None:
        seen.append(update)

    result = await follow(
        platform,  # type: ignore[arg-type]
        Deployment("d1", DeployStatus.QUEUED),
        deadline=deadline,
        on_progress=collect,
        timer=timer,
        interval=3,
        heartbeat=15,
    )
    return result, seen


async def test_progress_never_goes_backwards() -> None:
    q, b, d = DeployStatus.QUEUED, DeployStatus.BUILDING, DeployStatus.DEPLOYING
    result, seen = await _run(Scripted([b, q, d, b, S]), FakeTimer())

    assert [p.status for p in seen] == [q, b, d, S]
    assert result.succeeded  # type: ignore[attr-defined]


async def test_passing_errors_are_retried_but_five_in_a_row_end_the_watch() -> None:
    flaky = Scripted([PlatformTimeout("slow"), PlatformError("502"), S])
    result, seen = await _run(flaky, FakeTimer())
    assert result.succeeded  # type: ignore[attr-defined]
    assert any("looking again in" in p.note for p in seen)

    with pytest.raises(PlatformError):
        await _run(Scripted([PlatformError("down")]), FakeTimer())


async def test_auth_errors_end_the_watch_at_once() -> None:
    platform = Scripted([PlatformAuthError("revoked"), S])
    with pytest.raises(PlatformAuthError):
        await _run(platform, FakeTimer())
    assert platform.polls == 1


async def test_a_long_quiet_deploy_still_reports_elapsed_time() -> None:
    timer = FakeTimer()
    result, seen = await _run(Scripted([DeployStatus.BUILDING] * 20 + [S]), timer)

    building = [p for p in seen if p.status is DeployStatus.BUILDING]
    assert len(building) >= 3  # heartbeats every 15 s while nothing changes
    assert seen[-1].elapsed == timedelta(seconds=60)


async def test_the_deadline_is_kept_without_waiting_for_real() -> None:
    timer = FakeTimer()
    result, _ = await _run(Scripted([DeployStatus.DEPLOYING]), timer, deadline=600)

    assert result.timed_out  # type: ignore[attr-defined]
    assert result.elapsed == timedelta(seconds=600)  # type: ignore[attr-defined]


async def test_a_failing_progress_callback_does_not_abandon_the_deploy() -> None:
    async def broken(update: Progress) -> None:
        raise RuntimeError("slack is down")

    result = await follow(
        Scripted([DeployStatus.BUILDING, S]),  # type: ignore[arg-type]
        Deployment("d1", DeployStatus.QUEUED),
        deadline=60,
        on_progress=broken,
        timer=FakeTimer(),
    )
    assert result.succeeded
