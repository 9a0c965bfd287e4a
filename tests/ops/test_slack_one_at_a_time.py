"""One restart or rollback of a service at a time, through the real app: the second person is told who
is already at it, and nothing is run twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.exceptions import InvalidState
from bot.ops import confirmations, execution
from bot.ops import service as audit
from bot.ops.models import AuditLog
from tests.harness import slack_date, until
from tests.ops.conftest import Stack, World, incident_channel


def _polled(stack: Stack) -> bool:
    return any(b"query Deployment(" in seen.body for seen in stack.railway.requests)


async def _alice_restarts_gateway_and_it_is_being_followed(stack: Stack, channel: str) -> None:
    await stack.bot.command("gateway", command="/restart", user="U0ALICE", channel=channel)
    stack.railway.hang_until_released(body_contains="query Deployment(")
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0ALICE", settle=False)
    await until(lambda: stack.railway.restarts == 1 and _polled(stack), within=10)


async def test_a_restart_asked_while_another_is_followed_is_refused_and_names_who(stack: Stack) -> None:
    """Railway restarts in place, so the live deployment looked the same: a second person at 3 a.m. got a
    Confirm and restarted the service under the first restart."""
    channel = await incident_channel(stack)
    await _alice_restarts_gateway_and_it_is_being_followed(stack, channel)
    answered = len(stack.fake.responses)

    await stack.bot.command("gateway", command="/restart", user="U0BOB", channel=channel, settle=False)
    await until(lambda: len(stack.fake.responses) > answered, within=10)

    reply = stack.bot.last_reply()
    assert "gateway is being restarted right now by <@U0ALICE>" in reply, reply
    assert "/status gateway" in reply and "ops_confirm" not in str(stack.fake.responses[-1]), reply
    stack.railway.release()
    await stack.bot.settle()
    assert stack.railway.restarts == 1
    rows = [(e.actor, e.action, e.outcome) for e in await stack.audit()]
    assert rows == [("U0ALICE", "restart", "succeeded"), ("U0BOB", "restart", "refused")], rows
    timeline = [e.text for e in await stack.bot.timeline(1)]
    assert any("not run: gateway is being restarted right now by U0ALICE" in t for t in timeline), timeline

    # Once it is over, the command works again.
    await stack.bot.command("gateway", command="/restart", user="U0BOB", channel=channel)
    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0BOB")
    assert stack.railway.restarts == 2


async def test_a_rollback_asked_during_a_restart_is_refused(stack: Stack) -> None:
    channel = await incident_channel(stack)
    await _alice_restarts_gateway_and_it_is_being_followed(stack, channel)
    answered = len(stack.fake.responses)

    await stack.bot.command("gateway", command="/rollback", user="U0LEAD", channel=channel, settle=False)
    await until(lambda: len(stack.fake.responses) > answered, within=10)

    reply = stack.bot.last_reply()
    assert "gateway is being restarted right now by <@U0ALICE>" in reply and "/rollback gateway" in reply, reply
    stack.railway.release()
    await stack.bot.settle()
    assert not any(b"deploymentRollback" in seen.body for seen in stack.railway.requests)


async def test_two_confirmations_clicked_at_once_start_one_rollback(world: World) -> None:
    """Two people (or two replicas) confirm at the same moment: each saw nothing running when it
    looked, so the check must be part of the claim, not before it."""
    lead = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0LEAD")
    cto = await confirmations.prepare(world.deps, action="rollback", service="gateway", user_id="U0CTO")
    world.railway.hang_until_released(body_contains="query Deployment(")
    runs = [
        asyncio.create_task(execution.execute(world.deps, ref=ref, user_id=user, progress=world.progress))
        for ref, user in ((lead.ref, "U0LEAD"), (cto.ref, "U0CTO"))
    ]

    done, _ = await asyncio.wait(runs, timeout=10, return_when=asyncio.FIRST_COMPLETED)
    assert done, "neither confirmation was refused while the other one was followed"
    [refused] = done
    with pytest.raises(InvalidState, match="being rolled back right now by"):
        refused.result()
    world.railway.release()
    await asyncio.gather(*runs, return_exceptions=True)

    rollbacks = [d for d, _ in world.railway.documents if "deploymentRollback" in d]
    assert len(rollbacks) == 1
    async with world.deps.db.session() as session:
        outcomes = sorted(e.outcome for e in await audit.entries(session))
    assert outcomes == ["refused", "succeeded"]


async def test_a_restart_left_started_by_a_replica_that_died_is_refused_with_when_it_clears(stack: Stack) -> None:
    """The row of a restart whose replica died stays `started` until the sweep closes it (the deploy
    timeout, 10 m here, plus 5 m of health checks, then the next 30 s sweep): the refusal says when,
    so the on-call person knows whether to wait or to act on Railway by hand."""
    channel = await incident_channel(stack)
    started = (datetime.now(UTC) - timedelta(minutes=2)).replace(second=0, microsecond=0)
    async with stack.bot.deps.db.session() as session:
        session.add(
            AuditLog(
                at=started,
                actor="U0ALICE",
                action="restart",
                service="gateway",
                platform="railway",
                outcome="started",
                channel_id=channel,
                request_id="dead-replica",
            )
        )
        await session.commit()

    await stack.bot.command("gateway", command="/restart", user="U0BOB", channel=channel)

    reply = stack.bot.last_reply()
    clears = started + timedelta(minutes=16)
    assert "gateway is being restarted right now by <@U0ALICE>" in reply, reply
    # In each reader's own time zone; the audit and the timeline (read by the post-mortem) keep UTC text.
    assert f"counts as interrupted from {slack_date(clears)} and can be run again then" in reply, reply
    timeline = [e.text for e in await stack.bot.timeline(1)]
    assert any(f"interrupted from {clears:%Y-%m-%d %H:%M} UTC and" in t for t in timeline), timeline
    assert stack.railway.restarts == 0


async def test_who_is_at_it_in_a_private_incident_is_not_told_to_someone_who_cannot_see_it(stack: Stack) -> None:
    """To Bob, outside the private incident's channel, that incident does not exist: the refusals (while
    Alice's restart runs, and for his confirmation shown before it) say that someone else is at it."""
    private = await stack.bot.declare("private P1 Gateway is down")
    assert private.private and private.channel_id
    await stack.bot.command("gateway", command="/restart", user="U0BOB", channel="C0GENERAL")
    shown_to_bob = stack.button_value("ops_confirm")
    await _alice_restarts_gateway_and_it_is_being_followed(stack, private.channel_id)
    answered = len(stack.fake.responses)

    await stack.bot.command("gateway", command="/restart", user="U0BOB", channel="C0GENERAL", settle=False)
    await until(lambda: len(stack.fake.responses) > answered, within=10)

    busy = stack.raw()
    assert "gateway is being restarted right now by someone else" in busy, busy
    assert "U0ALICE" not in busy and private.ref not in busy, busy
    stack.railway.release()
    await stack.bot.settle()

    await stack.bot.click("ops_confirm", shown_to_bob, user="U0BOB", channel="C0GENERAL")

    superseded = stack.raw()
    assert "gateway was restarted by someone else after this was shown" in superseded, superseded
    assert "U0ALICE" not in superseded and private.ref not in superseded, superseded
    assert stack.railway.restarts == 1
    refusals = [e.detail for e in await stack.audit() if e.outcome == "refused"]
    assert len(refusals) == 2 and not any("U0ALICE" in d for d in refusals), refusals
