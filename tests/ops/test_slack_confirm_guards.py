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
