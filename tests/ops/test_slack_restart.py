"""/restart and /rollback through the real app: signed requests, the fake Slack, local platform fakes."""

from __future__ import annotations

from datetime import timedelta
from types import SimpleNamespace

import pytest
from sqlmodel import update

from bot.exceptions import ChatError
from bot.ops.models import PendingAction
from bot.slack.adapters.ops import SlackDirectory
from tests.fakes.webhook import Fault
from tests.ops.conftest import Stack, incident_channel
from tests.platforms.helpers import number_ids

# --- /restart -------------------------------------------------------------------------------------


async def test_restart_confirmed_follows_in_one_message_and_records_everything(stack: Stack) -> None:
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/restart", user="U0ALICE", channel=channel)

    confirmation = stack.raw()
    assert "Restart *gateway* on Railway?" in confirmation
    assert stack.railway.id_of("v3") in confirmation and "*Live now*" in confirmation
    assert stack.railway.restarts == 0
    value = stack.button_value("ops_confirm")

    await stack.bot.click("ops_confirm", value, user="U0ALICE", channel=channel)

    assert stack.railway.restarts == 1
    progress = stack.progress(channel)
    assert len(progress) == 1, "progress must be one message edited in place"
    updates = stack.fake.calls_to("chat.update")
    assert len(updates) >= 3 and {c.args.get("ts") for c in updates} == {progress[0].ts}
    assert "succeeded" in progress[0].text and "health" in str(progress[0].blocks)
    assert "confirmed by <@U0ALICE>" in stack.bot.replies()[-1]
    [entry] = await stack.audit()
    assert (entry.action, entry.outcome, entry.actor, entry.incident_id) == ("restart", "succeeded", "U0ALICE", 1)
    kinds = [e.kind for e in await stack.bot.timeline(1)]
    assert kinds.count("deploy") == 2 and "health" in kinds


async def test_restart_cancelled_changes_nothing(stack: Stack) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0BOB")
    await stack.bot.click("ops_cancel", stack.button_value("ops_cancel"), user="U0BOB")

    assert stack.railway.restarts == 0
    assert "cancelled by <@U0BOB>" in stack.bot.last_reply()
    assert [e.outcome for e in await stack.audit()] == ["cancelled"]
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0BOB")
    assert "already confirmed or cancelled" in stack.bot.last_reply()
    assert stack.railway.restarts == 0


async def test_restart_refused_is_answered_and_audited(stack: Stack) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0CAROL")

    reply = stack.bot.last_reply()
    assert "you may not restart gateway" in reply
    assert "ops_confirm" not in str(stack.last_response())
    [entry] = await stack.audit()
    assert (entry.actor, entry.outcome) == ("U0CAROL", "refused")


async def test_a_confirm_click_by_someone_not_allowed_is_refused(stack: Stack) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0ALICE")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0CAROL")

    assert "you may not restart" in stack.bot.last_reply()
    assert stack.railway.restarts == 0


async def test_progress_goes_to_a_dm_when_the_bot_cannot_post_in_the_channel(stack: Stack) -> None:
    stack.fake.add_channel("ops-private", channel_id="G0PRIVATE", private=True, members=["U0ALICE"])
    await stack.bot.command("gateway", command="/restart", user="U0ALICE", channel="G0PRIVATE")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0ALICE", channel="G0PRIVATE")

    dms = stack.fake.dms("U0ALICE")
    assert len(dms) == 1 and "succeeded" in dms[0].text
    assert stack.progress("G0PRIVATE") == []


async def test_usage_errors_show_the_usage(stack: Stack) -> None:
    # The usage comes through response_url: the front door acked the command at once.
    assert (await stack.bot.command("", command="/restart")).text == ""
    answer = stack.bot.fake.responses[-1]
    assert answer["response_type"] == "ephemeral"
    assert "Name the service to restart" in answer["text"] and "/restart &lt;service&gt;" in answer["text"]
    assert "Services: api, billing, gateway, jobs, web." in answer["text"]  # those with a deploy platform
    await stack.bot.command("gateway now please", command="/rollback")
    answer = stack.bot.fake.responses[-1]
    assert "/rollback gateway now" in str(answer["blocks"])


# --- /rollback ------------------------------------------------------------------------------------


async def test_rollback_without_id_goes_to_the_previous_revision(stack: Stack) -> None:
    await stack.bot.command("api", command="/rollback", user="U0LEAD")

    assert "Roll back *api* on Kubernetes?" in stack.raw()
    assert "*Roll back to*\\n`2`" in stack.raw()  # revision 2 is the target
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    assert stack.k8s.live_version() == "v2"
    assert "succeeded" in stack.progress("C0GENERAL")[-1].text
    [entry] = await stack.audit()
    assert (entry.action, entry.outcome, entry.from_deployment) == ("rollback", "succeeded", "3")


async def test_rollback_with_an_id(stack: Stack) -> None:
    wanted = stack.vercel.id_of("v1")
    await stack.bot.command(f"web {wanted}", command="/rollback", user="U0CTO")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0CTO")

    assert stack.vercel.live_version() == "v1"
    assert (await stack.audit())[0].outcome == "succeeded"


@pytest.mark.parametrize("typed", ["1", "rev1", "revision-1"])
async def test_rollback_to_a_kubernetes_revision_as_kubectl_names_it(stack: Stack, typed: str) -> None:
    """The Kubernetes client accepts `rev1` and `revision-1` (as `kubectl rollout history` says it), but the
    plan shown before it refused them as unknown deployments."""
    await stack.bot.command(f"api {typed}", command="/rollback", user="U0LEAD")

    assert "*Roll back to*\\n`1`" in stack.raw(), stack.bot.last_reply()
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.k8s.live_version() == "v1"


@pytest.mark.parametrize("service", ["billing", "gateway"])
async def test_a_kubernetes_spelling_is_no_revision_on_another_platform(stack: Stack, service: str) -> None:
    """`rev1` means revision 1 on Kubernetes only; on the webhook's (or Railway's) deployments numbered
    1, 2, 3 the plan offered deployment 1 for `/rollback billing rev1`."""
    fake = stack.webhook if service == "billing" else stack.railway
    number_ids(fake)
    await stack.bot.command(f"{service} rev1", command="/rollback", user="U0LEAD")

    reply = stack.bot.last_reply()
    assert f"Cannot roll back *{service}*" in reply and "deployment rev1 is not among" in reply
    assert "ops_confirm" not in str(stack.last_response())

    await stack.bot.command(f"{service} 1", command="/rollback", user="U0LEAD")
    assert "*Roll back to*\\n`1`" in stack.raw(), stack.bot.last_reply()


async def test_rollback_with_nothing_to_go_back_to_lists_candidates(stack: Stack) -> None:
    stack.webhook.deployments[1]["status"] = "failed"
    stack.webhook.deployments[1]["can_rollback"] = False
    stack.webhook.deployments[2]["status"] = "failed"
    stack.webhook.deployments[2]["can_rollback"] = False
    await stack.bot.command("billing", command="/rollback", user="U0LEAD")

    reply = stack.bot.last_reply()
    assert "Cannot roll back *billing*" in reply and "no earlier successful deployment" in reply
    assert stack.webhook.id_of("v1") in reply and "/rollback billing &lt;deployment-id&gt;" in reply
    assert "ops_confirm" not in str(stack.last_response())


async def test_a_deploy_that_fails_is_reported_and_audited(stack: Stack) -> None:
    channel = await incident_channel(stack)
    stack.webhook.fail_next_deploy()
    await stack.bot.command("billing", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [progress] = stack.progress(channel)
    assert "failed" in progress.text and "ended failed" in progress.text
    [entry] = await stack.audit()
    assert entry.outcome == "failed"
    assert any(e.kind == "deploy" and "failed" in e.text for e in await stack.bot.timeline(1))


async def test_platform_429_is_a_clear_answer(stack: Stack) -> None:
    stack.railway.throttle_next(30)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD")
    assert "Railway is rate-limiting the bot; try again in 30 s" in stack.bot.last_reply()

    await stack.bot.command("gateway", command="/restart", user="U0LEAD")
    stack.railway.throttle_next(60, body_contains="deploymentRestart")  # too long to wait for: said, not waited
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    report = stack.progress("C0GENERAL")[-1].text
    assert "failed" in report and "try again in 60 s" in report
    assert stack.railway.restarts == 0


async def test_platform_auth_error_is_a_clear_answer(stack: Stack) -> None:
    stack.vercel.token = "rotated-elsewhere"
    await stack.bot.command("web", command="/rollback", user="U0LEAD")

    reply = stack.bot.last_reply()
    assert "Vercel refused our credentials (HTTP 403)" in reply
    assert "Traceback" not in reply and "Something went wrong" not in reply


async def test_platform_text_is_escaped_before_it_reaches_slack(stack: Stack) -> None:
    stack.webhook.inject(Fault(500, {}, {"error": "<!channel> deploy tool exploded"}, body_contains='"restart"'))
    await stack.bot.command("billing", command="/restart", user="U0LEAD")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    [report] = stack.progress("C0GENERAL")
    assert "deploy tool exploded" in report.text
    assert "<!channel>" not in report.text and "<!channel>" not in str(report.blocks)
    assert "&lt;!channel&gt;" in report.text


async def test_group_handles_are_resolved_once_but_membership_is_read_every_time() -> None:
    class Client:
        def __init__(self) -> None:
            self.calls: list[str] = []

        async def usergroups_list(self) -> SimpleNamespace:
            self.calls.append("usergroups.list")
            return SimpleNamespace(data={"usergroups": [{"id": "S0ONCALL", "handle": "oncall"}]})

        async def usergroups_users_list(self, *, usergroup: str) -> SimpleNamespace:
            self.calls.append(usergroup)
            return SimpleNamespace(data={"users": ["U0ALICE"]})

    client = Client()
    directory = SlackDirectory(client)  # type: ignore[arg-type]

    assert await directory.group_members(group_id="@oncall") == ["U0ALICE"]
    assert await directory.group_members(group_id="@OnCall") == ["U0ALICE"]
    assert client.calls == ["usergroups.list", "S0ONCALL", "S0ONCALL"]
    with pytest.raises(ChatError, match="no user group with handle @nobody"):
        await directory.group_members(group_id="@nobody")
    assert client.calls[-1] == "usergroups.list"  # an unknown handle is looked up again


async def test_a_confirm_carrying_its_own_plan_is_refused_and_audited(stack: Stack) -> None:
    """The button carries only the stored confirmation's id; a click carrying values is a forgery."""
    await stack.bot.command("gateway", command="/restart", user="U0ALICE")
    value = stack.button_value("ops_confirm")
    assert len(value) <= 64 and "gateway" not in value  # nothing but the id
    forged = '{"a":"restart","s":"api","c":null,"t":null,"u":"U0ALICE","i":null,"r":"x"}'
    await stack.bot.click("ops_confirm", forged, user="U0ALICE")
    assert "this confirmation is unknown" in stack.bot.last_reply()
    await stack.bot.click("ops_cancel", "0" * 16, user="U0ALICE")
    assert "this confirmation is unknown" in stack.bot.last_reply()
    assert stack.railway.restarts == 0
    entries = await stack.audit()
    assert [(e.actor, e.action, e.outcome) for e in entries] == [
        ("U0ALICE", "click:confirm", "refused"),
        ("U0ALICE", "click:cancel", "refused"),
    ]
    assert '"s":"api"' in entries[0].detail
    await stack.bot.click("ops_confirm", value, user="U0ALICE")  # the real one still works
    assert stack.railway.restarts == 1


async def test_a_refusal_names_people_as_mentions(stack: Stack) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0CAROL")
    reply = stack.bot.last_reply()
    assert "you may not restart gateway: only <!subteam^S0ONCALL> or <@U0LEAD> may restart" in reply, reply
    assert "&lt;" not in reply
    await stack.bot.command("gateway", command="/restart", user="U0ALICE")
    await stack.bot.click("ops_cancel", stack.button_value("ops_cancel"), user="U0CAROL")
    assert "only <@U0ALICE> or people who may restart can cancel this" in stack.bot.last_reply()


async def test_a_restart_whose_answer_is_lost_is_not_reported_as_refused(stack: Stack) -> None:
    """A 502 from a proxy (or no answer in time) after the platform did the work: the outcome is not
    known, so the report must not say "refused, try again" (a second /restart restarts twice)."""
    await stack.bot.command("gateway", command="/restart", user="U0LEAD")
    stack.railway.lose_answer_next(body_contains="deploymentRestart")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    assert stack.railway.restarts == 1  # Railway did restart it
    report = stack.progress("C0GENERAL")[-1].text
    assert "outcome unknown" in report and "refused" not in report, report
    assert "may have started" in report and "/status gateway" in report, report
    [entry] = await stack.audit()
    assert entry.outcome == "failed" and "may have started" in entry.detail


async def test_a_restart_after_which_the_service_is_still_failing_is_not_shown_as_a_success(stack: Stack) -> None:
    """The deploy went through but /health still answers 503: a green "succeeded" reads as "fixed"."""
    await stack.bot.command("billing", command="/restart", user="U0LEAD")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    [report] = stack.progress("C0GENERAL")
    assert "deployed, but billing is still failing" in report.text and "succeeded" not in report.text, report.text
    headline = str(report.blocks)
    assert "⚠️" in headline and "✅" not in headline and "postgres" in headline, headline


@pytest.mark.parametrize(("command", "answer"), [("/restart", {"ok": True}), ("/rollback", "queued")])
async def test_a_deploy_webhook_that_takes_the_action_but_names_no_deployment_is_not_refused(
    stack: Stack, command: str, answer: object
) -> None:
    """A 2xx means the receiver queued the work: "refused" would send the person to run it again."""
    action = command.removeprefix("/")
    await stack.bot.command("billing", command=command, user="U0LEAD")
    stack.webhook.inject(Fault(202, {}, answer, body_contains=f'"action":"{action}"', after=True))
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    assert len([d for d in stack.webhook.deployments if d["status"] != "removed"]) == 2  # it was queued
    report = stack.progress("C0GENERAL")[-1].text
    assert "refused" not in report and "may have started" in report and "/status billing" in report, report
    assert "HTTP 202" in report, report
    [entry] = await stack.audit()
    assert entry.outcome == "failed" and "may have started" in entry.detail


async def test_a_vercel_restart_after_a_rollback_is_not_reported_live_when_vercel_keeps_the_old_one(
    stack: Stack,
) -> None:
    """After an instant rollback Vercel stops pointing production at new deployments until one is
    promoted: the redeploy builds and is READY, but production still serves the rolled-back one."""
    await stack.bot.command("web", command="/rollback", user="U0LEAD")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.vercel.live_version() == "v2"
    serving = stack.vercel.production_id

    await stack.bot.command("web", command="/restart", user="U0LEAD")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")

    assert stack.vercel.restarts == 1 and stack.vercel.production_id == serving  # built, never served
    report = stack.progress("C0GENERAL")[-1].text
    assert "Restart web" in report and "succeeded" not in report, report
    assert "rolled back" in report and "promote" in report, report
    outcomes = [(e.action, e.outcome) for e in await stack.audit()]
    assert outcomes == [("rollback", "succeeded"), ("restart", "failed")]


async def test_a_confirmation_shown_before_someone_else_restarted_the_service_is_refused(stack: Stack) -> None:
    """Railway restarts in place (the live deployment keeps its id), so a confirmation left open while
    someone else restarted the service still looked current, and a late click restarted it again."""
    await stack.bot.command("gateway", command="/restart", user="U0ALICE")
    alices = stack.button_value("ops_confirm")
    await stack.bot.command("gateway", command="/restart", user="U0BOB")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0BOB")
    assert stack.railway.restarts == 1

    await stack.bot.click("ops_confirm", alices, user="U0ALICE")

    assert stack.railway.restarts == 1
    reply = stack.bot.last_reply()
    assert "<@U0BOB>" in reply and "/restart gateway" in reply, reply
    assert [(e.actor, e.outcome) for e in await stack.audit()] == [("U0BOB", "succeeded"), ("U0ALICE", "refused")]
    await stack.bot.click("ops_confirm", alices, user="U0ALICE")  # and it stays used up
    assert "already confirmed or cancelled" in stack.bot.last_reply() and stack.railway.restarts == 1


async def _age_confirmations(stack: Stack, by: timedelta) -> None:
    async with stack.bot.deps.db.session() as session:
        await session.exec(update(PendingAction).values(created_at=stack.bot.deps.clock.now() - by))
        await session.commit()


async def test_a_confirmation_older_than_fifteen_minutes_is_refused_and_used_up(stack: Stack) -> None:
    """What it showed (the live deployment, why it was wanted) is that old: a button scrolled up from an
    earlier incident must not restart a service at 3 a.m."""
    await stack.bot.command("gateway", command="/restart", user="U0ALICE")
    value = stack.button_value("ops_confirm")
    await _age_confirmations(stack, timedelta(minutes=16))

    await stack.bot.click("ops_confirm", value, user="U0ALICE")

    assert stack.railway.restarts == 0
    reply = stack.bot.last_reply()
    assert "shown 16 minutes ago" in reply and "/restart gateway" in reply, reply
    assert [(e.actor, e.outcome) for e in await stack.audit()] == [("U0ALICE", "refused")]
    await stack.bot.click("ops_confirm", value, user="U0ALICE")
    assert "already confirmed or cancelled" in stack.bot.last_reply() and stack.railway.restarts == 0


async def test_a_confirmation_fourteen_minutes_old_still_runs(stack: Stack) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0ALICE")
    await _age_confirmations(stack, timedelta(minutes=14))
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0ALICE")
    assert stack.railway.restarts == 1
    assert [e.outcome for e in await stack.audit()] == ["succeeded"]
