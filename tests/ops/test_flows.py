"""Restart, rollback and status flows: permissions, plans, execution, audit and timeline."""

from __future__ import annotations

from typing import Any

import pytest

from bot.config import Permissions
from bot.exceptions import InvalidState, NotFound, PermissionDenied, PlatformAuthError, PlatformRateLimited
from bot.ops import confirmations, execution
from bot.ops import service as audit
from bot.ops import status as ops_status
from bot.ops.models import Action, AuditLog, Outcome
from bot.ops.plans import PlanRef
from bot.ops.service import AlreadyHandled, check_permission
from bot.platforms.base import DeployStatus
from bot.timeline import service as timeline
from tests.fakes.webhook import Fault
from tests.ops.conftest import Directory, World


async def _audit(world: World) -> list[AuditLog]:
    async with world.deps.db.session() as session:
        return list(reversed(await audit.entries(session)))


async def _timeline(world: World, incident_id: int) -> list[tuple[str, str]]:
    async with world.deps.db.session() as session:
        return [(e.kind, e.text) for e in await timeline.events(session, incident_id=incident_id)]


# --- permissions ----------------------------------------------------------------------------------


async def test_permission_by_user_group_and_handle() -> None:
    directory = Directory(groups={"S0ONCALL": ["U0ALICE"]}, handles={"cto": "U0CTO", "lead": "U0LEAD"})
    perms = Permissions(restart=["S0ONCALL", "U0LEAD", "@cto"])

    assert (
        await check_permission(action="restart", user_id="U0LEAD", permissions=perms, directory=directory)
    ).via == "U0LEAD"
    assert (
        await check_permission(action="restart", user_id="U0ALICE", permissions=perms, directory=directory)
    ).via == "S0ONCALL"
    assert (
        await check_permission(action="restart", user_id="U0CTO", permissions=perms, directory=directory)
    ).via == "@cto"
    refused = await check_permission(action="restart", user_id="U0BOB", permissions=perms, directory=directory)
    assert not refused and refused.reason == "only {people} may restart"
    assert refused.people == ("S0ONCALL", "U0LEAD", "@cto")
    assert refused.plain == "only S0ONCALL or U0LEAD or @cto may restart"
    assert "@lead" not in directory.lookups  # a person's handle is not looked up as a group


async def test_an_empty_permission_list_means_nobody() -> None:
    decision = await check_permission(action="rollback", user_id="U0LEAD", permissions=Permissions(), directory=None)
    assert not decision and "permissions.rollback" in decision.reason


async def test_a_failed_group_lookup_refuses_and_says_why() -> None:
    directory = Directory(groups={"S0ONCALL": ["U0ALICE"]})
    directory.broken = True
    decision = await check_permission(
        action="restart", user_id="U0ALICE", permissions=Permissions(restart=["S0ONCALL"]), directory=directory
    )
    assert not decision and "could not check S0ONCALL" in decision.reason


async def test_a_refusal_is_audited_and_on_the_incident_timeline(world: World) -> None:
    incident = await world.incident()
    with pytest.raises(PermissionDenied, match="may restart"):
        await confirmations.prepare(
            world.deps, action="restart", service="gateway", user_id="U0CAROL", incident_id=incident
        )

    [entry] = await _audit(world)
    assert (entry.actor, entry.action, entry.service, entry.outcome) == ("U0CAROL", "restart", "gateway", "refused")
    assert entry.finished_at is not None and entry.incident_id == incident
    [(kind, text)] = await _timeline(world, incident)
    assert kind == "deploy" and "refused" in text and "<@" not in text
    assert world.railway.restarts == 0


# --- plans ----------------------------------------------------------------------------------------


async def test_unknown_service_suggests_the_closest(world: World) -> None:
    with pytest.raises(NotFound, match="did you mean gateway"):
        await confirmations.prepare(world.deps, action="restart", service="gatway", user_id="U0LEAD")


async def test_a_service_without_platform_says_so(world: World) -> None:
    with pytest.raises(NotFound, match="no deploy platform"):
        await confirmations.prepare(world.deps, action="restart", service="docs", user_id="U0LEAD")


async def test_restart_plan_names_service_platform_and_live_deployment(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="restart", service="Gateway", user_id="U0ALICE")

    assert plan.ready
    assert (plan.service, plan.platform, plan.platform_name) == ("gateway", "railway", "Railway")
    assert plan.current is not None and plan.current.id == world.railway.id_of("v3")
    assert len(plan.ref.encode()) < 2000


async def test_rollback_plan_picks_the_newest_good_deployment_before_the_live_one(world: World) -> None:
    world.railway.deployments.clear()
    world.railway.seed(["v1", "v2", "v3", "v4"], statuses=["REMOVED", "FAILED", "SUCCESS", "FAILED"])
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")

    assert plan.ready
    assert plan.current is not None and plan.current.id == world.railway.id_of("v3")
    assert plan.target is not None and plan.target.id == world.railway.id_of("v1")


async def test_rollback_plan_with_an_id(world: World) -> None:
    wanted = world.railway.id_of("v1")
    plan = await confirmations.prepare(
        world.deps, action="rollback", service="gateway", user_id="U0CTO", target_id=wanted[:8]
    )

    assert plan.target is not None and plan.target.id == wanted
    assert [d.id for d in plan.candidates] == [world.railway.id_of("v2")]


async def test_rollback_with_nothing_to_go_back_to_lists_candidates(world: World) -> None:
    world.railway.deployments.clear()
    world.railway.seed(["v1", "v2"], statuses=["FAILED", "SUCCESS"])
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")

    assert not plan.ready and "no earlier successful deployment" in plan.problem
    assert [d.id for d in plan.candidates] == [world.railway.id_of("v1")]


async def test_rollback_with_an_unknown_id_lists_candidates(world: World) -> None:
    plan = await confirmations.prepare(
        world.deps, action="rollback", service="gateway", user_id="U0LEAD", target_id="nope-nope"
    )
    assert not plan.ready and "not among" in plan.problem
    assert len(plan.candidates) == 2


def test_plan_ref_round_trips_and_rejects_garbage() -> None:
    ref = PlanRef(Action.ROLLBACK, "gateway", "cur", "tgt", "U0LEAD", 7)
    assert PlanRef.decode(ref.encode()) == ref
    with pytest.raises(InvalidState, match="run the command again"):
        PlanRef.decode('{"a": "explode"}')


# --- execution ------------------------------------------------------------------------------------


async def test_restart_runs_follows_rechecks_health_and_reports(world: World) -> None:
    incident = await world.incident()
    plan = await confirmations.prepare(
        world.deps, action="restart", service="gateway", user_id="U0ALICE", incident_id=incident
    )
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)

    assert report.succeeded, report.message
    assert report.health is not None and report.health.ok
    assert set(report.durations) == {"call", "deploy", "health", "total"}
    assert world.progress.phases == ["calling", "queued", "deploying", "health"]
    assert world.progress.reports == [report]
    assert world.railway.restarts == 1
    [entry] = await _audit(world)
    assert (entry.outcome, entry.actor, entry.platform) == ("succeeded", "U0ALICE", "railway")
    assert entry.finished_at is not None and entry.from_deployment == plan.current.id  # type: ignore[union-attr]
    kinds = [kind for kind, _ in await _timeline(world, incident)]
    assert kinds == ["deploy", "deploy", "health"]


async def test_rollback_by_id_reaches_the_target(world: World) -> None:
    wanted = world.railway.id_of("v1")
    plan = await confirmations.prepare(
        world.deps, action="rollback", service="gateway", user_id="U0LEAD", target_id=wanted
    )
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.succeeded and world.railway.live_version() == "v1"
    [entry] = await _audit(world)
    assert (entry.from_deployment, entry.target_deployment) == (plan.current.id, wanted)  # type: ignore[union-attr]


async def test_a_deploy_that_fails_is_reported_and_audited_failed(world: World) -> None:
    incident = await world.incident()
    world.railway.fail_next_deploy()
    plan = await confirmations.prepare(
        world.deps, action="rollback", service="gateway", user_id="U0LEAD", incident_id=incident
    )
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.outcome is Outcome.FAILED and report.deploy_status is DeployStatus.FAILED
    assert "ended failed" in report.message
    assert report.health is None and world.health.hits == 0
    [entry] = await _audit(world)
    assert entry.outcome == "failed"
    assert any(kind == "deploy" and "failed" in text for kind, text in await _timeline(world, incident))


async def test_a_deploy_that_never_ends_stops_at_the_deploy_timeout(world: World) -> None:
    world.railway.stall()
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.outcome is Outcome.FAILED and report.timed_out
    assert "after 5m 00s" in report.message
    assert 300 <= report.durations["deploy"].total_seconds() <= 303


async def test_platform_429_on_the_action_is_a_clear_failure(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    # The pre-flight read is throttled for longer than a read waits out: audited, then shown.
    world.railway.inject(Fault(429, {"Retry-After": "30"}, {"errors": [{"message": "rate limited"}]}))
    with pytest.raises(PlatformRateLimited) as caught:
        await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)
    assert "try again in 30 s" in str(caught.value)
    [entry] = await _audit(world)
    assert entry.outcome == "failed" and "could not start" in entry.detail
    assert world.railway.restarts == 0

    # The same confirmation still works once the platform lets us through.
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)
    assert report.succeeded


async def test_platform_429_on_the_mutation_twice_is_reported(world: World) -> None:
    incident = await world.incident()
    plan = await confirmations.prepare(
        world.deps, action="restart", service="gateway", user_id="U0ALICE", incident_id=incident
    )
    world.railway.throttle_next(9, body_contains="deploymentRestart")
    world.railway.throttle_next(9, body_contains="deploymentRestart")
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)

    assert report.outcome is Outcome.FAILED
    assert report.message == "Railway refused the restart: Railway is rate-limiting the bot; try again in 9 s"
    assert world.railway.restarts == 0
    assert world.progress.reports == [report]
    [entry] = await _audit(world)
    assert entry.outcome == "failed" and "try again in 9 s" in entry.detail
    assert any("rate-limiting" in text for _, text in await _timeline(world, incident))


async def test_auth_error_is_reported_without_a_stack_trace(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    world.railway.account_token = "rotated"
    world.railway.project_token = None
    with pytest.raises(PlatformAuthError) as caught:
        await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)
    assert "Railway refused" in str(caught.value) and "RAILWAY_TOKEN" in str(caught.value)
    assert "Traceback" not in str(caught.value)
    [entry] = await _audit(world)
    assert entry.outcome == "failed" and "could not start" in entry.detail


async def test_a_second_click_on_the_same_confirmation_does_nothing(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)
    with pytest.raises(AlreadyHandled):
        await execution.execute(world.deps, ref=plan.ref, user_id="U0CTO", progress=world.progress)
    assert [e.outcome for e in await _audit(world)] == ["succeeded"]


async def test_two_clicks_at_once_run_the_action_once(world: World) -> None:
    import asyncio

    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    results = await asyncio.gather(
        execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress),
        execution.execute(world.deps, ref=plan.ref, user_id="U0BOB", progress=world.progress),
        return_exceptions=True,
    )

    assert sorted(type(r).__name__ for r in results) == ["AlreadyHandled", "Report"]
    assert world.railway.restarts == 1


async def test_cancel_is_audited_and_closes_the_confirmation(world: World) -> None:
    incident = await world.incident()
    plan = await confirmations.prepare(
        world.deps, action="restart", service="gateway", user_id="U0ALICE", incident_id=incident
    )
    await confirmations.cancel(world.deps, ref=plan.ref, user_id="U0ALICE")
    with pytest.raises(AlreadyHandled):
        await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)

    [entry] = await _audit(world)
    assert entry.outcome == "cancelled"
    assert ("deploy", "Restart of gateway cancelled") in await _timeline(world, incident)
    assert world.railway.restarts == 0


async def test_a_stranger_cannot_cancel_someone_elses_confirmation(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    with pytest.raises(PermissionDenied):
        await confirmations.cancel(world.deps, ref=plan.ref, user_id="U0CAROL")


async def test_a_click_by_someone_not_allowed_is_refused_and_does_not_burn_the_confirmation(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    with pytest.raises(PermissionDenied):
        await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.succeeded
    assert [e.outcome for e in await _audit(world)] == ["refused", "succeeded"]


async def test_a_plan_gone_stale_is_refused(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    other = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0CTO")
    await execution.execute(world.deps, ref=other.ref, user_id="U0CTO", progress=world.progress)

    with pytest.raises(InvalidState, match="changed since this was shown"):
        await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)
    assert [e.outcome for e in await _audit(world)] == ["succeeded", "refused"]


async def test_unhealthy_after_deploy_is_retried_then_reported(world: World) -> None:
    world.health.status = 503
    world.health.body = {"status": "DOWN", "components": {"db": {"status": "DOWN"}}}
    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)

    assert report.succeeded  # the restart itself worked
    assert "health is still failing" in report.message and "db" in report.message
    assert world.health.hits == 4 and world.timer.sleeps.count(5.0) == 3


# --- status ---------------------------------------------------------------------------------------


async def test_status_of_everything_is_recorded_in_an_incident(world: World) -> None:
    incident = await world.incident()
    world.health.status = 503
    report = await ops_status.status(world.deps, actor="U0BOB", incident_id=incident)

    assert [r.service for r in report.results] == ["gateway", "docs"]
    assert report.overall.value == "failing"
    [(kind, text)] = await _timeline(world, incident)
    assert kind == "health" and text.startswith("Health: 2 failing (gateway: HTTP 503")


async def test_status_of_one_service_adds_its_deployments(world: World) -> None:
    report = await ops_status.status(world.deps, service="gateway")

    assert report.platform_name == "Railway"
    assert report.current is not None and report.current.id == world.railway.id_of("v3")
    assert len(report.deployments) == 3 and not report.deploy_error


async def test_status_still_answers_when_the_platform_fails(world: World) -> None:
    world.railway.account_token = "rotated"
    world.railway.project_token = None
    report = await ops_status.status(world.deps, service="gateway")

    assert report.results[0].ok
    assert "refused" in report.deploy_error


async def test_a_huge_typed_deployment_id_is_refused_and_audited_without_overflowing(world: World) -> None:
    typed = "x" * 5000
    with pytest.raises(PermissionDenied):
        await confirmations.prepare(
            world.deps, action="rollback", service="gateway", user_id="U0CAROL", target_id=typed
        )
    plan = await confirmations.prepare(
        world.deps, action="rollback", service="gateway", user_id="U0LEAD", target_id=typed
    )

    assert not plan.ready and len(plan.problem) < 200
    denied, not_offered = await _audit(world)
    assert (denied.actor, denied.target_deployment) == ("U0CAROL", "x" * 200)
    assert (not_offered.actor, not_offered.outcome, not_offered.target_deployment) == ("U0LEAD", "refused", "x" * 200)


async def test_a_bug_while_following_is_recorded_as_a_failure_not_left_started(world: World) -> None:
    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    assert world.deps.ops is not None
    client: Any = world.deps.ops.platforms.get("gateway")

    async def broken(deployment_id: str) -> None:
        raise RuntimeError("bug")

    client.deployment_status = broken
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)

    assert report.outcome is Outcome.FAILED and "logged" in report.message
    [entry] = await _audit(world)
    assert entry.outcome == "failed" and entry.finished_at is not None
