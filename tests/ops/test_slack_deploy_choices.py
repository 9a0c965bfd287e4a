"""/restart and /rollback choosing what to deploy: what a restart with nothing live does, typed ids,
and how far back a rollback looks for a deployment that was good."""

from __future__ import annotations

from typing import Any

import pytest

from tests.ops.conftest import Stack, incident_channel

# --- /restart with nothing live -------------------------------------------------------------------


async def test_a_railway_restart_with_nothing_live_says_it_redeploys_the_newest(stack: Stack) -> None:
    """Railway redeploys the newest deployment when nothing is live; the confirmation said the live one
    would be restarted in place with no new code."""
    stack.railway.deployments[0]["status"] = "FAILED"  # v3's build failed: nothing is live
    stack.railway.deployments[0]["canRollback"] = False
    await stack.bot.command("gateway", command="/restart", user="U0LEAD")

    confirmation = stack.raw()
    assert "no new code" not in confirmation and "restarted in place" not in confirmation
    assert "nothing is live, so Railway builds and deploys the newest deployment again" in confirmation
    assert stack.railway.id_of("v3") in confirmation and "it ended failed" in confirmation
    assert "`/rollback gateway`" in confirmation
    assert f"from its newest deployment {stack.railway.id_of('v3')}" in stack.last_response()["text"]

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.railway.live_version() == "v3"  # what the confirmation named is what went live


def _nothing_live(stack: Stack) -> str:
    """v3's build failed, so nothing is live on Railway; returns v3's id."""
    stack.railway.deployments[0]["status"] = "FAILED"
    stack.railway.deployments[0]["canRollback"] = False
    return stack.railway.id_of("v3")


async def test_a_railway_redeploy_names_what_it_redeploys_while_it_runs_and_after(stack: Stack) -> None:
    """The confirmation named the deployment Railway redeploys; after the click the progress message, the
    report, the timeline and the audit log said "Restart gateway (live: nothing live)" instead."""
    channel = await incident_channel(stack)
    v3 = _nothing_live(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)
    assert stack.railway.live_version() == "v3"

    shown = [
        c.args
        for c in stack.fake.calls_to("chat.postMessage") + stack.fake.calls_to("chat.update")
        if c.args.get("channel") == channel and str(c.args.get("text", "")).startswith(("Restart", "Redeploy"))
    ]
    assert len(shown) >= 3, shown
    for args in shown:  # every step of the progress message, and the report it ends as
        assert "nothing live" not in str(args["text"]), args["text"]
        assert f"Redeploy gateway on Railway from its newest deployment {v3}" in str(args["text"])
        assert f"Redeploying `{v3}`" in str(args["blocks"]) or f"Redeployed `{v3}`" in str(args["blocks"])
    [report] = stack.progress(channel)
    assert "succeeded" in report.text and f"Redeployed `{v3}`" in str(report.blocks)
    assert f"from its newest deployment {v3}" in stack.bot.replies()[-1]

    deploys = [e.text for e in await stack.bot.timeline(1) if e.kind == "deploy"]
    assert len(deploys) == 2 and all(f"newest deployment {v3}" in text for text in deploys), deploys
    assert all("nothing live" not in text for text in deploys)
    [entry] = await stack.audit()
    assert entry.outcome == "succeeded" and f"redeployed {v3}" in entry.detail, entry.detail


async def test_a_railway_redeploy_is_named_in_the_timeline_payload_and_the_audit_row(stack: Stack) -> None:
    """The texts named the deployment Railway redeployed, but the `deploy` events' payloads had no `to` and
    the audit row's `target_deployment` was the new deployment: neither said which one was deployed again."""
    channel = await incident_channel(stack)
    v3 = _nothing_live(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)
    made = stack.railway.deployments[0]["id"]
    assert made != v3 and stack.railway.live_version() == "v3"

    started, finished = [e.data for e in await stack.bot.timeline(1) if e.kind == "deploy"]
    assert (started["outcome"], started["to"], started.get("from")) == ("started", v3, None), started
    assert (finished["outcome"], finished["to"], finished["deployment"]) == ("succeeded", v3, made), finished
    [entry] = await stack.audit()
    assert (entry.target_deployment, entry.from_deployment) == (v3, None)
    assert f"redeployed {v3} (failed; nothing was live) as {made}: " in entry.detail, entry.detail


async def test_a_newer_deployment_since_the_confirmation_is_not_redeployed_in_its_place(stack: Stack) -> None:
    """CI deployed v4 between the confirmation (which named v3) and the click: Railway redeploys the newest
    deployment, so the click redeployed v4, which nobody had confirmed."""
    channel = await incident_channel(stack)
    v3 = _nothing_live(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    value = stack.button_value("ops_confirm")
    v4 = stack.railway.deploy("v4", "BUILDING")

    await stack.bot.click("ops_confirm", value, user="U0LEAD", channel=channel)

    assert not any("serviceInstanceRedeploy" in doc for doc, _ in stack.railway.documents)
    reply = stack.bot.last_reply()
    assert f"was {v3}, now {v4}" in reply and "run /restart gateway again" in reply, reply
    [entry] = await stack.audit()
    assert (entry.outcome, entry.incident_id) == ("refused", 1) and v4 in entry.detail
    assert any("not run" in e.text and v4 in e.text for e in await stack.bot.timeline(1))
    await stack.bot.click("ops_confirm", value, user="U0LEAD", channel=channel)
    assert "already confirmed or cancelled" in stack.bot.last_reply()

    # Asked again, the confirmation names v4, and that is what is redeployed.
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    assert f"from its newest deployment {v4}" in stack.last_response()["text"]
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)
    assert stack.railway.live_version() == "v4"


async def test_a_deployment_made_just_after_the_clicks_check_is_not_redeployed_either(stack: Stack) -> None:
    """CI deployed v4 after the click's check and before the redeploy: `serviceInstanceRedeploy` redeployed
    the newest deployment then, v4, in place of the v3 the person confirmed."""
    channel = await incident_channel(stack)
    v3 = _nothing_live(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    stack.railway.before_next_mutation = lambda: stack.railway.deploy("v4", "FAILED")

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    assert stack.railway.live_version() == "v3"
    mutations = [(doc, variables) for doc, variables in stack.railway.documents if "mutation" in doc]
    assert len(mutations) == 1 and "deploymentRedeploy" in mutations[0][0] and mutations[0][1] == {"id": v3}
    assert stack.railway.violations == []
    [entry] = await stack.audit()
    assert entry.outcome == "succeeded" and f"redeployed {v3}" in entry.detail, entry.detail


async def test_a_vercel_restart_with_nothing_live_is_refused_before_the_confirm_button(stack: Stack) -> None:
    """Vercel redeploys the live deployment, so with nothing live the restart can only fail: it was offered
    with a Confirm button anyway and failed after the click."""
    stack.vercel.deployments.clear()
    stack.vercel.seed(["v1", "v2", "v3"], states=["ERROR"] * 3)
    await stack.bot.command("web", command="/restart", user="U0LEAD")

    assert "ops_confirm" not in stack.raw()
    reply = stack.bot.last_reply()
    assert "Cannot restart web" in reply and "no live production deployment" in reply, reply
    assert "`/rollback web`" in stack.raw()
    assert stack.vercel.restarts == 0


async def test_a_kubernetes_restart_of_a_paused_deployment_is_refused_before_the_confirm_button(
    stack: Stack,
) -> None:
    """A paused Deployment does not roll out the restart annotation (and the click failed on it): it was
    offered with a Confirm button that could only fail, without saying how to resume it."""
    stack.k8s.deployment["spec"]["paused"] = True
    await stack.bot.command("api", command="/restart", user="U0LEAD")

    assert "ops_confirm" not in stack.raw()
    reply = stack.bot.last_reply()
    assert "Cannot restart api" in reply and "Deployment prod/api is paused" in reply, reply
    assert "`kubectl rollout resume deployment/api -n prod`" in stack.raw()
    assert "/rollback api" not in stack.raw()  # refused on a paused Deployment too
    assert stack.k8s.patches == []


async def test_a_kubernetes_rollback_of_a_paused_deployment_is_refused_before_the_confirm_button(
    stack: Stack,
) -> None:
    """A paused Deployment does not roll out a rollback's pod template either: /rollback offered a Confirm
    button that could only fail after the click. Paused between confirmation and click, it is still refused."""
    stack.k8s.deployment["spec"]["paused"] = True
    await stack.bot.command("api", command="/rollback", user="U0LEAD")

    assert "ops_confirm" not in stack.raw()
    reply = stack.bot.last_reply()
    assert "Cannot roll back api" in reply and "Deployment prod/api is paused" in reply, reply
    assert "does not roll out a rollback" in reply and "then run /rollback again" in reply, reply
    assert "`kubectl rollout resume deployment/api -n prod`" in stack.raw()
    assert "pick one by ID" not in stack.raw() and "no other deployments" not in stack.raw()
    assert stack.k8s.patches == []

    stack.k8s.deployment["spec"]["paused"] = False
    await stack.bot.command("api", command="/rollback", user="U0LEAD")
    value = stack.button_value("ops_confirm")
    stack.k8s.deployment["spec"]["paused"] = True  # paused after the confirmation was shown
    await stack.bot.click("ops_confirm", value, user="U0LEAD")

    assert stack.k8s.patches == [] and stack.k8s.live_version() == "v3"
    assert "paused" in stack.progress("C0GENERAL")[-1].text
    entries = await stack.audit()
    assert [e.outcome for e in entries] == ["refused", "failed"], entries


def _vercel_nothing_live(stack: Stack) -> None:
    stack.vercel.deployments.clear()
    stack.vercel.seed(["v1", "v2", "v3"], states=["ERROR"] * 3)


def _k8s_paused(stack: Stack) -> None:
    stack.k8s.deployment["spec"]["paused"] = True


def _no_earlier_good_one(stack: Stack) -> None:
    for older in stack.webhook.deployments[1:]:
        older.update(status="failed", can_rollback=False)


@pytest.mark.parametrize(
    ("service", "command", "make", "problem"),
    [
        ("web", "/restart", _vercel_nothing_live, "no live production deployment"),
        ("api", "/restart", _k8s_paused, "is paused"),
        ("api", "/rollback", _k8s_paused, "is paused"),
        ("billing", "/rollback", _no_earlier_good_one, "no earlier successful deployment"),
    ],
)
async def test_a_request_refused_at_confirmation_time_is_audited_and_on_the_timeline(
    stack: Stack, service: str, command: str, make: Any, problem: str
) -> None:
    """A restart that could only fail, or a rollback with nothing to go back to, was answered with no Confirm
    button and kept nowhere: the audit log and the incident's timeline had no trace of the request."""
    channel = await incident_channel(stack)
    make(stack)
    await stack.bot.command(service, command=command, user="U0LEAD", channel=channel)

    assert "ops_confirm" not in stack.raw() and problem in stack.bot.last_reply()
    [entry] = await stack.audit()
    assert (entry.actor, entry.action, entry.service, entry.outcome) == ("U0LEAD", command[1:], service, "refused")
    assert entry.incident_id == 1 and entry.request_id is None and problem in entry.detail, entry.detail
    [event] = [e for e in await stack.bot.timeline(1) if e.kind == "deploy"]
    assert "not offered" in event.text and problem in event.text, event.text


async def test_a_rollback_to_an_unknown_id_outside_an_incident_is_audited_with_what_was_typed(stack: Stack) -> None:
    await stack.bot.command("billing nope-123456", command="/rollback", user="U0LEAD")

    assert "ops_confirm" not in stack.raw()
    [entry] = await stack.audit()
    assert (entry.outcome, entry.incident_id, entry.target_deployment) == ("refused", None, "nope-123456")
    assert entry.from_deployment == stack.webhook.id_of("v3") and "not among" in entry.detail, entry.detail


# --- /rollback with a typed id ----------------------------------------------------------------------


@pytest.mark.parametrize("service", ["gateway", "web", "billing"])
async def test_a_prefix_of_two_deployment_ids_is_ambiguous(stack: Stack, service: str) -> None:
    """A typed prefix that starts two ids rolled back to the newer of them without a word."""
    fake: Any = {"gateway": stack.railway, "web": stack.vercel, "billing": stack.webhook}[service]
    key = "uid" if fake is stack.vercel else "id"
    older, newer = fake.deployments[2], fake.deployments[1]  # v1, v2 (v3 is live)
    older[key], newer[key] = "d3adbeef1a2b3c4d5e6f", "d3adbeef9f8e7d6c5b4a"
    await stack.bot.command(f"{service} d3adbeef", command="/rollback", user="U0LEAD")

    reply = stack.bot.last_reply()
    assert "ops_confirm" not in str(stack.last_response()), reply
    assert "the ID d3adbeef is ambiguous: 2 deployments start with it" in reply
    assert "d3adbeef1…" in reply and "d3adbeef9…" in reply and "type more of it" in reply

    await stack.bot.command(f"{service} d3adbeef1", command="/rollback", user="U0LEAD")
    assert "*Roll back to*\\n`d3adbeef1a2b3c4d5e6f`" in stack.raw(), stack.bot.last_reply()


# --- /rollback after many failed builds -------------------------------------------------------------


@pytest.mark.parametrize("service", ["gateway", "web"])
async def test_rollback_looks_past_a_run_of_failed_builds(stack: Stack, service: str) -> None:
    """Thirty failed builds since the live one: the plan listed ten deployments, found nothing before
    the live one among them and asked for an ID instead of going back to the previous good one."""
    versions = [f"v{n}" for n in range(1, 34)]
    if service == "gateway":
        fake: Any = stack.railway
        fake.deployments.clear()
        fake.seed(versions, statuses=["REMOVED", "REMOVED", "SUCCESS"] + ["FAILED"] * 30)
    else:
        fake = stack.vercel
        fake.deployments.clear()
        fake.page_cap = 5  # several pages of Vercel's list
        fake.seed(versions, states=["READY"] * 3 + ["ERROR"] * 30)
    await stack.bot.command(service, command="/rollback", user="U0LEAD")

    assert f"*Roll back to*\\n`{fake.id_of('v2')}`" in stack.raw(), stack.bot.last_reply()
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert fake.live_version() == "v2"
    assert (await stack.audit())[0].outcome == "succeeded"


async def test_a_rollback_whose_target_is_recent_reads_one_page_of_deployments(stack: Stack) -> None:
    """Looking back further is only for when the recent deployments hold no target: Railway pages its
    list, and a rollback at 3 a.m. should not wait on four round trips (nor spend the rate limit)."""
    fake = stack.railway
    fake.deployments.clear()
    fake.seed([f"v{n}" for n in range(1, 34)], statuses=["REMOVED"] * 32 + ["SUCCESS"])
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert fake.live_version() == "v32"
    pages = [variables for document, variables in fake.documents if "query Deployments" in document]
    assert all(variables.get("after") is None for variables in pages), pages
