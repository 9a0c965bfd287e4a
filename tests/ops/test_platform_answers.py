"""What the platforms answer besides success, as the on-call engineer meets it: a short throttle is waited
out by the bot, and a service with nowhere to act is refused like any request (audited, on the timeline)."""

from __future__ import annotations

from datetime import timedelta

from bot.ops import confirmations, execution
from bot.ops import service as audit
from bot.ops.models import Outcome
from bot.platforms.base import Deployment
from bot.platforms.railway import RailwayPlatform
from bot.platforms.registry import Platforms
from tests.fakes.webhook import Fault
from tests.ops.conftest import Stack, World, incident_channel


async def test_a_restart_of_a_service_with_no_platform_is_refused_and_audited(stack: Stack) -> None:
    """`search` has a health check but no deploy platform: the refusal was answered, but neither audited
    nor on the incident's timeline, unlike every other refusal."""
    channel = await incident_channel(stack)
    await stack.bot.command("search", command="/restart", user="U0LEAD", channel=channel)

    reply = stack.bot.last_reply()
    assert "search has no deploy platform in bot.yml, so the bot cannot restart it" in reply, reply
    [entry] = await stack.audit()
    assert (entry.action, entry.service, entry.outcome) == ("restart", "search", "refused"), entry
    assert "no deploy platform" in entry.detail and entry.incident_id == 1
    assert any("Restart of search not run: " in e.text for e in await stack.bot.timeline(1))


async def test_a_restart_throttled_briefly_is_asked_again_and_the_wait_shown(stack: Stack) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0LEAD")
    stack.railway.throttle_next(9, body_contains="deploymentRestart")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    assert stack.railway.restarts == 1
    notes = [str(c.args.get("blocks")) for c in stack.fake.calls_to("chat.update")]
    assert any("Railway is rate-limiting the bot; asking again in 9 s" in n for n in notes), notes
    assert "succeeded" in stack.progress("C0GENERAL")[-1].text


async def test_platform_429_on_the_mutation_is_asked_again_after_its_retry_after(world: World) -> None:
    """A 429 means Railway did nothing: the restart was reported failed with "try again in 9 s", leaving the
    wait and the second attempt to the person at 3 a.m. The bot waits the 9 s and asks once more."""
    plan = await confirmations.prepare(world.deps, action="restart", service="gateway", user_id="U0ALICE")
    world.railway.throttle_next(9, body_contains="deploymentRestart")
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0ALICE", progress=world.progress)

    assert report.outcome is Outcome.SUCCEEDED, report.message
    assert world.railway.restarts == 1
    assert world.timer.sleeps[0] == 9 and world.timer.sleeps.count(9) == 1, world.timer.sleeps


async def test_the_wait_for_railway_to_list_the_rollbacks_deployment_is_on_the_bots_timer(world: World) -> None:
    """The world's Railway client slept on a timer of its own: its waits for the new deployment to be listed
    were invisible to the tests and left out of the call's duration in the report."""
    world.railway.appear_after = 2  # listed at the third look after the mutation
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.outcome is Outcome.SUCCEEDED, report.message
    assert world.timer.sleeps[:2] == [0.5, 1.0], world.timer.sleeps
    assert report.durations["call"] == timedelta(seconds=1.5)


class ReadsWhatItMade(RailwayPlatform):
    """A client that reads the deployment its rollback made right after sending it, and lets that read's rate
    limit out of rollback(): what a future client may do, and what the bot must not answer by sending again."""

    async def rollback(self, target_id: str | None = None) -> Deployment:
        made = await super().rollback(target_id)
        return await self.deployment_status(made.id)


async def test_a_rate_limit_after_the_rollback_was_sent_is_not_answered_by_rolling_back_again(world: World) -> None:
    """Every PlatformRateLimited out of rollback() was taken for "nothing was done" and the whole rollback run
    again after its Retry-After: with a client that reads after its write, Railway rolled back twice."""
    ops = world.deps.ops
    assert ops is not None
    railway = ops.platforms.get("gateway")
    assert isinstance(railway, RailwayPlatform)
    client = ReadsWhatItMade(
        world.deps.http, target=railway.target, token=railway.token, api_url=railway.api_url, timer=world.timer
    )
    ops.platforms = Platforms({"gateway": client})
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    world.railway.before_next_mutation = lambda: world.railway.throttle_next(5, body_contains="query Deployment(")

    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert len([d for d, _ in world.railway.documents if "deploymentRollback" in d]) == 1
    assert 5 not in world.timer.sleeps, world.timer.sleeps
    assert report.outcome is Outcome.FAILED
    assert "did not confirm the rollback" in report.message and "may have started anyway" in report.message
    assert "refused" not in report.message and "try again" not in report.message, report.message


async def test_a_deploy_started_with_the_rollback_is_named_in_the_report(world: World) -> None:
    """CI deployed at the same moment as the rollback: the bot followed the newest new deployment and reported
    it as the rollback's, though Railway does not say which of the two the rollback made."""
    world.railway.appear_after = 0  # both listed at the first look
    world.railway.tick = timedelta(0)  # and both created in the same second as the rollback was sent
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    ci: list[str] = []
    world.railway.before_next_mutation = lambda: ci.append(world.railway.deploy("v4"))

    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.deployment is not None
    followed = report.deployment.id
    assert followed != ci[0] and followed == world.railway.deployments[0]["id"]
    assert f"another deployment started on Railway at the same moment ({ci[0]} (release v4))" in report.message
    assert f"the bot followed the newest, {followed}" in report.message, report.message
    assert "check in Railway which one is the rollback" in report.message
    async with world.deps.db.session() as session:
        [entry] = await audit.entries(session)
    assert "another deployment started on Railway" in entry.detail


async def test_a_rollback_deployment_the_bot_cannot_tell_apart_is_said_in_the_report(world: World) -> None:
    """Railway's answer gave no time to compare (no `Date`): the one new deployment was followed and reported as
    the rollback's without a word, though it may have been CI's."""
    world.railway.send_date = False
    plan = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")

    report = await execution.execute(world.deps, ref=plan.ref, user_id="U0LEAD", progress=world.progress)

    assert report.deployment is not None
    said = f"could not tell the rollback's deployment apart: followed {report.deployment.id}"
    assert said in report.message, report.message
    async with world.deps.db.session() as session:
        [entry] = await audit.entries(session)
    assert said in entry.detail


async def test_a_rollback_whose_first_read_fails_says_nothing_was_started(stack: Stack) -> None:
    """The rollback reads the deployments again before it sends anything: a 503 there was reported as "did
    not confirm the rollback; it may have started anyway", and someone went looking for a rollback that
    was never sent."""
    await stack.bot.command("billing", command="/rollback", user="U0LEAD")
    for _ in range(2):  # one is asked once more (tests/ops/test_slack_read_retries.py)
        stack.webhook.inject(Fault(503, {}, {"error": "database unavailable"}, body_contains='"action":"list"'))
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    assert not [r for r in stack.webhook.requests if (r.json() or {}).get("action") == "rollback"]
    report = stack.progress("C0GENERAL")[-1].text
    assert "may have started" not in report and "refused" not in report, report
    assert "the rollback was not sent and nothing was started" in report and "HTTP 503" in report, report
    assert "`/rollback billing` again" in report, report
    [entry] = await stack.audit()
    assert entry.outcome == "failed" and "nothing was started" in entry.detail
