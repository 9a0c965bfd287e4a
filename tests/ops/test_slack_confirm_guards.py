"""What a Confirm click on a restart/rollback must not do once the situation it was shown in is over."""

from __future__ import annotations

from tests.ops.conftest import Stack, incident_channel


async def test_a_confirmation_clicked_after_its_incident_was_resolved_is_refused_and_used_up(stack: Stack) -> None:
    """Shown during the incident, clicked after someone resolved it (the service recovered): a restart of a
    healthy production service nobody needs any more, written on a closed incident's timeline."""
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/restart", user="U0ALICE", channel=channel)
    value = stack.button_value("ops_confirm")
    await stack.bot.command("resolve recovered on its own", channel=channel)
    assert not (await stack.bot.incident(1)).is_open

    await stack.bot.click("ops_confirm", value, user="U0ALICE", channel=channel)

    assert stack.railway.restarts == 0
    reply = stack.bot.last_reply()
    assert "INC-1 was resolved" in reply and "/restart gateway" in reply, reply
    assert [(e.actor, e.outcome) for e in await stack.audit()] == [("U0ALICE", "refused")]
    assert any("not run" in e.text and "resolved" in e.text for e in await stack.bot.timeline(1))
    await stack.bot.click("ops_confirm", value, user="U0ALICE", channel=channel)
    assert "already confirmed or cancelled" in stack.bot.last_reply() and stack.railway.restarts == 0


async def test_a_restart_asked_in_a_resolved_incident_channel_still_runs(stack: Stack) -> None:
    """Typed after the resolve, the person knows the incident is over: nothing is taken from them."""
    channel = await incident_channel(stack)
    await stack.bot.command("resolve recovered on its own", channel=channel)
    await stack.bot.command("gateway", command="/restart", user="U0ALICE", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0ALICE", channel=channel)

    assert stack.railway.restarts == 1
    assert [e.outcome for e in await stack.audit()] == ["succeeded"]


async def test_a_rollback_never_offers_a_deployment_newer_than_the_live_one(stack: Stack) -> None:
    """Vercel was rolled back to v3 and CI kept building production deployments (Vercel serves none of
    them until one is promoted): with v3 older than every deployment listed, /rollback offered the newest
    build, the broken code the team had rolled back from, and confirming it promoted it."""
    stack.vercel.deployments.clear()
    stack.vercel.seed([f"v{n}" for n in range(1, 26)])
    stack.vercel.production_id = stack.vercel.id_of("v3")

    await stack.bot.command("web", command="/rollback", user="U0LEAD")

    # Looking further back finds v3 among the deployments, so the one before it is offered, nothing newer.
    shown = stack.raw()
    assert f"*Roll back to*\\n`{stack.vercel.id_of('v2')}`" in shown, stack.bot.last_reply()
    assert not any(stack.vercel.id_of(f"v{n}") in shown for n in range(4, 26))
    assert stack.vercel.live_version() == "v3"


async def test_a_restart_the_platform_cannot_be_asked_about_is_audited_and_on_the_timeline(stack: Stack) -> None:
    """Railway throttled the look at what is live, so /restart answered with an error and nothing else: the
    incident's timeline and the audit log did not show that the on-call engineer tried and why it failed."""
    channel = await incident_channel(stack)
    stack.railway.throttle_next(30)

    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)

    assert "Railway is rate-limiting the bot; try again in 30 s" in stack.bot.last_reply()
    assert stack.railway.restarts == 0
    [entry] = await stack.audit()
    assert (entry.actor, entry.action, entry.outcome, entry.incident_id) == ("U0LEAD", "restart", "failed", 1)
    assert "rate-limiting" in entry.detail
    assert any("gateway" in e.text and "rate-limiting" in e.text for e in await stack.bot.timeline(1))
    # Nothing was claimed or left running: the next /restart is shown and runs.
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)
    assert stack.railway.restarts == 1
