"""Railway reports a rate limit inside an HTTP 200 (a GraphQL error), not only as a 429, through the real app.

A read throttled that way is waited out by the same rule as a 429 (`bot.platforms.reads`), for as long as its
`Retry-After` or `X-RateLimit-Reset` says; the restart or rollback itself is never sent a second time on it.
"""

from __future__ import annotations

import time

from tests.ops.conftest import Stack, incident_channel

READ = "query Deployments("


async def test_a_read_throttled_inside_a_200_is_asked_again_at_the_reset(stack: Stack) -> None:
    """Railway said "Rate limit exceeded" in a 200 with the window's reset: /restart answered the rate limit
    (with no time to wait) instead of asking again once the window had reset, as it does after a 429."""
    channel = await incident_channel(stack)
    # The stack runs on the wall clock: a reset 9 s ahead (the most a read waits out is 10 s) leaves 8 s for
    # the command to reach the read before the wait could fall below the bound asserted.
    stack.railway.throttle_in_answer_next(reset=str(int(time.time()) + 9), body_contains=READ)

    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)

    assert "Restart *" in stack.raw() and stack.button_value("ops_confirm"), stack.bot.replies()
    [wait] = stack.timer.sleeps
    assert 1.0 < wait <= 9.0, stack.timer.sleeps
    assert [e.outcome for e in await stack.audit()] == []


async def test_a_read_throttled_inside_a_200_waits_its_retry_after(stack: Stack) -> None:
    channel = await incident_channel(stack)
    stack.railway.throttle_in_answer_next(retry_after="3", reset=str(int(time.time()) + 3600), body_contains=READ)

    await stack.bot.command("gateway", command="/rollback", user="U0LEAD", channel=channel)

    assert "Roll back *" in stack.raw() and stack.button_value("ops_confirm"), stack.bot.replies()
    assert stack.timer.sleeps == [3.0]


async def test_a_read_throttled_inside_a_200_for_long_is_said_with_its_wait(stack: Stack) -> None:
    channel = await incident_channel(stack)
    stack.railway.throttle_in_answer_next(retry_after="120", body_contains=READ)

    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)

    reply = stack.bot.last_reply()
    assert "Railway is rate-limiting the bot" in reply and "try again in 120 s" in reply, stack.bot.replies()
    assert "ops_confirm" not in stack.raw() and stack.timer.sleeps == []


async def test_a_restart_throttled_inside_a_200_is_said_not_sent_again(stack: Stack) -> None:
    """The mutation itself: Railway asks writes to be retried only after a 429 or no answer."""
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/restart", user="U0LEAD", channel=channel)
    stack.railway.throttle_in_answer_next(retry_after="3", body_contains="deploymentRestart")

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    sent = [d for d, _ in stack.railway.documents if "deploymentRestart" in d]
    assert sent == [] and stack.railway.restarts == 0  # the throttled one never reached the schema
    assert 3.0 not in stack.timer.sleeps, stack.timer.sleeps
    [report] = stack.progress(channel)
    assert "Railway refused the restart: Railway is rate-limiting the bot" in report.text, report.text
    assert "try again in 3 s" in report.text, report.text


async def test_a_throttled_look_for_the_rollbacks_deployment_does_not_roll_back_twice(stack: Stack) -> None:
    """Railway took the rollback, then throttled the look for the deployment it made: the 429 reached the
    rule for a throttled rollback call, which waited and sent the rollback again."""
    channel = await incident_channel(stack)
    await stack.bot.command("gateway", command="/rollback", user="U0LEAD", channel=channel)
    stack.railway.before_next_mutation = lambda: stack.railway.throttle_next(5, body_contains=READ)

    await stack.bot.click("ops_confirm", stack.button_value("ops_confirm"), user="U0LEAD", channel=channel)

    assert len([d for d, _ in stack.railway.documents if "deploymentRollback" in d]) == 1
    assert stack.railway.live_version() == "v2"
    [report] = stack.progress(channel)
    assert "succeeded" in report.text, report.text
