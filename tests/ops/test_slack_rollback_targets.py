"""/rollback's default target is a deployment that ran healthily, on every platform, and the confirmation
says which one it is and when it was live."""

from __future__ import annotations

from tests.fakes.webhook import Fault
from tests.ops.conftest import Stack, incident_channel


async def status_line(stack: Stack, service: str, deployment_id: str) -> str:
    """The line `/status <service>` shows for one deployment (where a doubt about it is said)."""
    await stack.bot.command(service, command="/status")
    [line] = [line for line in stack.raw().split("\\n") if deployment_id in line]
    return line


def _railway_with_a_crash(stack: Stack) -> None:
    """v2 ran fine; v3 crashed and was replaced (REMOVED, as v2 is); v4 is live."""
    stack.railway.deployments.clear()
    stack.railway.executions.clear()
    stack.railway.seed(["v1", "v2", "v3", "v4"], crashed=("v3",))


async def test_a_railway_rollback_skips_a_deployment_that_crashed_before_it_was_replaced(stack: Stack) -> None:
    """v3 crashed, then v4 replaced it: Railway shows it REMOVED like any replaced deployment, and it was
    the default target."""
    _railway_with_a_crash(stack)
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD")

    target = stack.railway.id_of("v2")
    assert f"to {target}" in stack.last_response()["text"]
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.railway.live_version() == "v2"

    # /status lists the crash beside the deployment, so a person picking one by ID sees it too.
    line = await status_line(stack, "gateway", stack.railway.id_of("v3"))
    assert "its last run crashed" in line, line


async def test_the_rollback_confirmation_says_when_the_target_was_live(stack: Stack) -> None:
    """The confirmation named the target and its creation time only, not when it stopped being live."""
    _railway_with_a_crash(stack)
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD")

    confirmation = stack.raw()
    # v2 was created at SEEDED_FROM + 1 h and replaced when v3 went live, an hour later.
    born, replaced = stack.railway.SEEDED_FROM.timestamp() + 3600, stack.railway.SEEDED_FROM.timestamp() + 7200
    assert f"Live from <!date^{int(born)}^" in confirmation, confirmation
    assert f"until <!date^{int(replaced)}^" in confirmation, confirmation


async def test_a_deployment_that_crashed_can_still_be_picked_by_id_with_its_crash_shown(stack: Stack) -> None:
    _railway_with_a_crash(stack)
    v3 = stack.railway.id_of("v3")
    await stack.bot.command(f"gateway {v3}", command="/rollback", user="U0LEAD")

    assert "not known to have run healthily: its last run crashed" in stack.raw()
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.railway.live_version() == "v3"


async def test_a_deployment_that_crashed_once_and_then_ran_is_a_target(stack: Stack) -> None:
    """Railway restarted v3 after a crash and it ran until v4 replaced it: its newest run is what counts."""
    _railway_with_a_crash(stack)
    stack.railway.run(stack.railway.id_of("v3"), "REMOVED")
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD")

    assert f"to {stack.railway.id_of('v3')}" in stack.last_response()["text"]


async def test_runs_railway_does_not_list_or_refuses_leave_the_rollback_as_it_was(stack: Stack) -> None:
    """The runs query is not in Railway's docs: an empty answer or an error must not cost the rollback its
    default (nothing says how the deployments ran, so the newest replaced one is offered, as before)."""
    stack.railway.deployments.clear()
    stack.railway.seed(["v1", "v2", "v3"])
    stack.railway.forget_runs()
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD")
    assert f"to {stack.railway.id_of('v2')}" in stack.last_response()["text"]
    assert "not known to have run healthily" not in stack.raw()

    stack.railway.refuse_runs = True
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD")
    assert f"to {stack.railway.id_of('v2')}" in stack.last_response()["text"]
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.railway.live_version() == "v2"


async def test_a_kubernetes_rollback_skips_a_revision_whose_pods_never_became_available(stack: Stack) -> None:
    """Revision 2's rollout never got a pod available (ImagePullBackOff) before revision 3 replaced it; its
    ReplicaSet still holds that pod, yet it was the default target."""
    v2 = next(
        rs
        for rs in stack.k8s.replica_sets
        if rs["metadata"]["annotations"].get("deployment.kubernetes.io/revision") == "2"
    )
    v2["status"] = {"replicas": 1, "readyReplicas": 0, "availableReplicas": 0, "observedGeneration": 1}
    await stack.bot.command("api", command="/rollback", user="U0LEAD")

    assert "from 3 to 1" in stack.last_response()["text"], stack.last_response()["text"]
    await stack.bot.command("api 2", command="/rollback", user="U0LEAD")
    assert "none of its 1 pods became available" in stack.raw()


async def test_a_kubernetes_revision_scaled_to_zero_is_offered_with_the_doubt_said(stack: Stack) -> None:
    """A ReplicaSet scaled to zero reads 0 of 0 whether its pods ever became available or not, and nothing
    the API keeps (its revision annotations, the Deployment's conditions) tells which: the confirmation
    said nothing of it, as if the revision were known to have run."""
    await stack.bot.command("api", command="/rollback", user="U0LEAD")

    confirmation = stack.raw()
    assert "from 3 to 2" in stack.last_response()["text"], stack.last_response()["text"]
    assert "the bot cannot tell whether revision 2 ran healthily" in confirmation, confirmation
    assert "scaled to zero" in confirmation, confirmation


# --- Vercel: READY is a finished build, not a deployment that served production ----------------------


def _vercel_with_a_staged_build(stack: Stack, *, alias_failed: bool = False) -> None:
    """v1 served production, v2 was built but never did (staged, or its alias failed), v3 is live."""
    stack.vercel.deployments.clear()
    if alias_failed:
        stack.vercel.seed(["v1", "v2", "v3"], alias_failed=("v2",))
    else:
        stack.vercel.seed(["v1", "v2", "v3"], staged=("v2",))


async def test_a_vercel_rollback_skips_a_deployment_that_never_served_production(stack: Stack) -> None:
    """v2 was deployed without the production domain (staged, never promoted): READY like any other
    production deployment, it was the default target, a build nobody had ever seen serve."""
    _vercel_with_a_staged_build(stack)
    await stack.bot.command("web", command="/rollback", user="U0LEAD")

    assert f"*Roll back to*\\n`{stack.vercel.id_of('v1')}`" in stack.raw(), stack.bot.last_reply()
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.vercel.live_version() == "v1"

    line = await status_line(stack, "web", stack.vercel.id_of("v2"))
    assert "never served production traffic" in line, line


async def test_a_vercel_deployment_whose_alias_failed_is_no_default_target(stack: Stack) -> None:
    """Without `readySubstate` in the answer, the alias error Vercel keeps on the deployment says it."""
    _vercel_with_a_staged_build(stack, alias_failed=True)
    stack.vercel.left_out = {"readySubstate"}
    await stack.bot.command("web", command="/rollback", user="U0LEAD")

    assert f"*Roll back to*\\n`{stack.vercel.id_of('v1')}`" in stack.raw(), stack.bot.last_reply()
    line = await status_line(stack, "web", stack.vercel.id_of("v2"))
    assert "assigning it the production domain failed (could not assign v2)" in line, line


async def test_a_vercel_deployment_that_never_served_can_be_picked_by_id_with_that_said(stack: Stack) -> None:
    """Vercel's instant rollback takes only a deployment that served production: one that never did was
    sent to it anyway, and refused. It is promoted instead, and the confirmation says so before the click."""
    _vercel_with_a_staged_build(stack)
    await stack.bot.command(f"web {stack.vercel.id_of('v2')}", command="/rollback", user="U0LEAD")

    confirmation = stack.raw()
    assert "not known to have run healthily: it never served production traffic" in confirmation
    assert "the bot promotes it instead: it serves production for the first time" in confirmation, confirmation
    assert "Never live in production" in confirmation and "Live from" not in confirmation, confirmation
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.vercel.live_version() == "v2"
    assert [s.path.split("/")[4] for s in stack.vercel.requests if s.method == "POST"] == ["promote"]


async def test_a_vercel_promote_while_the_project_is_rolled_back_says_it_ends_the_rollback(stack: Stack) -> None:
    """Vercel documents that a promote undoes an instant rollback and turns the automatic assignment of
    production domains back on (https://vercel.com/docs/cli/rollback#undo-a-rollback): promoting a staged
    build to get away from the rolled-back one also sends every later push to production by itself, and
    the confirmation did not say so."""
    _vercel_with_a_staged_build(stack)
    await stack.bot.command("web", command="/rollback", user="U0LEAD")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.vercel.live_version() == "v1" and stack.vercel.rolled_back

    for version in ("v2", "v3"):  # staged, never served; served, newer than the live one: both promoted
        await stack.bot.command(f"web {stack.vercel.id_of(version)}", command="/rollback", user="U0LEAD")
        confirmation = stack.raw()
        assert "the project is rolled back now" in confirmation, confirmation
        assert "a promote ends that: Vercel assigns the production domains by itself again" in confirmation
        assert "the next push to the production branch goes live without anyone promoting it" in confirmation
    assert "the bot promotes it instead: it serves production for the first time" not in confirmation

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD")
    assert stack.vercel.live_version() == "v3" and not stack.vercel.rolled_back


async def test_a_vercel_promote_when_nothing_was_rolled_back_says_nothing_of_a_rollback(stack: Stack) -> None:
    _vercel_with_a_staged_build(stack)
    await stack.bot.command(f"web {stack.vercel.id_of('v2')}", command="/rollback", user="U0LEAD")

    confirmation = stack.raw()
    assert "the bot promotes it instead" in confirmation and "rolled back now" not in confirmation, confirmation


async def test_a_failed_vercel_promote_names_the_domains_not_moved_and_says_vercel_gives_no_reason(
    stack: Stack,
) -> None:
    """Vercel's alias job for a promote failed: the report said only "the deployment ended failed", with
    no word of why, of what production serves now, or of where to look."""
    _vercel_with_a_staged_build(stack)
    channel = await incident_channel(stack)
    await stack.bot.command(f"web {stack.vercel.id_of('v2')}", command="/rollback", user="U0LEAD", channel=channel)
    stack.vercel.fail_next_deploy()
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [message] = stack.progress(channel)
    v2, v3 = stack.vercel.id_of("v2"), stack.vercel.id_of("v3")
    assert f"Vercel could not move production's domains to {v2} (its alias job failed)" in message.text, message.text
    assert "not moved: web.example.com" in message.text and "web.vercel.app" not in message.text, message.text
    assert f"production is still {v3}" in message.text, message.text
    assert "Vercel's API gives no reason" in message.text and "`vercel promote status`" in message.text
    assert stack.vercel.live_version() == "v3"
    [asked] = [r for r in stack.vercel.requests if r.path.endswith("/promote/aliases")]
    assert asked.query.get("failedOnly") == "true", asked.query
    [row] = [r for r in await stack.audit() if r.outcome == "failed"]
    assert "alias job failed" in row.detail and "gives no reason" in row.detail, row.detail


async def test_a_failed_vercel_rollback_says_vercel_gives_no_reason_and_where_to_look(stack: Stack) -> None:
    """Vercel documents the domains of a failed alias job for a promote only: a failed rollback still says
    plainly that no reason was given, and where to look."""
    channel = await incident_channel(stack)
    await stack.bot.command("web", command="/rollback", user="U0LEAD", channel=channel)
    stack.vercel.fail_next_deploy()
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [message] = stack.progress(channel)
    assert "(its alias job failed)" in message.text and "Vercel's API gives no reason" in message.text, message.text
    assert "`vercel rollback status`" in message.text and "not moved:" not in message.text, message.text
    assert not [r for r in stack.vercel.requests if r.path.endswith("/aliases")]


async def test_vercel_refusing_a_rollback_is_said_in_plain_words(stack: Stack) -> None:
    """On the Hobby plan Vercel rolls back only to the previous production deployment: its refusal read
    "Vercel refused the rollback: Vercel rejected the request (HTTP 402): …", with nothing said of
    what is live now."""
    _vercel_with_a_staged_build(stack)
    hobby = {"error": {"code": "forbidden", "message": "To roll back further, upgrade to pro"}}
    stack.vercel.inject(Fault(402, {}, hobby, path_contains="/rollback/"))
    live = stack.vercel.id_of("v3")
    channel = await incident_channel(stack)
    await stack.bot.command("web", command="/rollback", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    [message] = stack.progress(channel)
    report = f"{message.text} {message.blocks}"
    v1 = stack.vercel.id_of("v1")
    assert f"Vercel would not roll production back to {v1}" in report, report
    assert f"production still serves {live}; nothing changed" in report, report
    assert "the Vercel plan does not allow this rollback (Vercel said: To roll back further, upgrade to pro)" in report
    assert "rejected the request" not in report and "HTTP 402" not in report
    [row] = [r for r in await stack.audit() if r.outcome == "failed"]
    assert "production still serves" in row.detail
    assert stack.vercel.live_version() == "v3"


async def test_a_vercel_answer_without_those_fields_keeps_the_rollback_as_it_was(stack: Stack) -> None:
    """An answer without the documented fields says nothing of how a deployment served: the newest
    READY one before the live one stays the default, as before."""
    _vercel_with_a_staged_build(stack)
    stack.vercel.left_out = {"readySubstate", "isRollbackCandidate", "aliasAssigned", "aliasError"}
    await stack.bot.command("web", command="/rollback", user="U0LEAD")

    assert f"*Roll back to*\\n`{stack.vercel.id_of('v2')}`" in stack.raw(), stack.bot.last_reply()
    assert "not known to have run healthily" not in stack.raw()


# --- the deploy webhook: the receiver says how a deployment ran and when it was replaced --------------


async def test_a_webhook_rollback_skips_a_deployment_the_receiver_reports_unhealthy(stack: Stack) -> None:
    """The receiver knows v2 crash-looped until v3 replaced it, and had no way to say so: v2 was the default."""
    stack.webhook.report_unhealthy("v2", "crash-looped until it was replaced")
    await stack.bot.command("billing", command="/rollback", user="U0LEAD")

    assert f"*Roll back to*\\n`{stack.webhook.id_of('v1')}`" in stack.raw(), stack.bot.last_reply()
    await stack.bot.command(f"billing {stack.webhook.id_of('v2')}", command="/rollback", user="U0LEAD")
    assert "not known to have run healthily: crash-looped until it was replaced" in stack.raw()

    stack.webhook.report_unhealthy("v1")  # no reason given
    line = await status_line(stack, "billing", stack.webhook.id_of("v1"))
    assert "the deploy webhook reports it did not run healthily" in line, line


async def test_the_webhook_rollback_confirmation_says_when_the_target_was_replaced(stack: Stack) -> None:
    await stack.bot.command("billing", command="/rollback", user="U0LEAD")

    confirmation = stack.raw()
    # v2 was created at SEEDED_FROM + 1 h and replaced when v3 went live, an hour later.
    born, replaced = stack.webhook.SEEDED_FROM.timestamp() + 3600, stack.webhook.SEEDED_FROM.timestamp() + 7200
    assert f"Live from <!date^{int(born)}^" in confirmation, confirmation
    assert f"until <!date^{int(replaced)}^" in confirmation, confirmation


async def test_a_receiver_without_the_optional_fields_keeps_the_rollback_as_it_was(stack: Stack) -> None:
    stack.webhook.forget_health()
    await stack.bot.command("billing", command="/rollback", user="U0LEAD")

    assert f"*Roll back to*\\n`{stack.webhook.id_of('v2')}`" in stack.raw(), stack.bot.last_reply()
    assert "until when, deploy webhook does not say" in stack.raw(), stack.raw()
    assert "not known to have run healthily" not in stack.raw()


async def test_a_receivers_own_meta_does_not_write_the_confirmations_warnings(stack: Stack) -> None:
    """The receiver's `meta` is passed through as it is: keys a platform once used for the confirmation's
    warnings ("Never live", a caveat) must not be set from there."""
    v2 = next(d for d in stack.webhook.deployments if d["meta"]["version"] == "v2")
    v2["meta"].update({"never_served": True, "rollback_note": "run this at once", "caveat": "x"})
    await stack.bot.command("billing", command="/rollback", user="U0LEAD")

    confirmation = stack.raw()
    assert f"*Roll back to*\\n`{stack.webhook.id_of('v2')}`" in confirmation, confirmation
    assert "Live from" in confirmation and "Never live" not in confirmation, confirmation
    assert "run this at once" not in confirmation
