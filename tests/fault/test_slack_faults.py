"""Slack throttling (429 + Retry-After) and failing (5xx) while an incident is declared.

Nothing lost: the incident row exists whatever Slack does, the user is told what failed and can
retry. Nothing doubled: however the failures fall, one channel, one pinned summary, one
announcement per incident.
"""

from __future__ import annotations

import asyncio

import pytest

from bot.incidents.models import Incident
from bot.slack.blocks import ActionId
from bot.timeline.models import Kind
from tests.fault.support import bot_errors, count
from tests.harness import BotHarness


def _incident_channels(bot: BotHarness) -> list[str]:
    return sorted(c.name for c in bot.fake.channels.values() if c.name.startswith("inc-"))


def _summaries(bot: BotHarness, incident: Incident) -> list[str]:
    """Top-level bot messages in the incident channel that carry the summary's buttons."""
    assert incident.channel_id
    out = []
    for msg in bot.fake.messages(incident.channel_id):
        ids = [e.get("action_id") for b in msg.blocks or [] if b.get("type") == "actions" for e in b["elements"]]
        if ActionId.RESOLVE in ids and msg.ephemeral_to is None:
            out.append(msg.ts)
    return out


def _announcements(bot: BotHarness, incident: Incident) -> list[str]:
    return [m.ts for m in bot.fake.messages("C0INCIDENTS") if incident.ref + ":" in str(m.blocks)]


async def _assert_set_up_once(bot: BotHarness, number: int = 1) -> Incident:
    incident = await bot.incident(number)
    assert incident.setup_error is None, incident.setup_error
    assert incident.channel_id and incident.summary_ts and incident.announcement_ts
    assert _incident_channels(bot) == [incident.channel_name]
    channel = bot.fake.channels[incident.channel_id]
    assert "U0ALICE" in channel.members, "the declarer was never invited"
    assert "P1" in channel.topic, "the topic was never set"
    assert _summaries(bot, incident) == [incident.summary_ts]
    assert channel.pins == [incident.summary_ts]
    assert _announcements(bot, incident) == [incident.announcement_ts]
    assert await count(bot.deps, Incident) == 1
    return incident


async def _retry_setup(bot: BotHarness, number: int = 1) -> None:
    response = await bot.click(ActionId.RETRY_SETUP, str(number), channel="C0GENERAL")
    assert response.status_code == 200


async def test_429_bursts_are_waited_out_and_nothing_is_doubled(bot: BotHarness) -> None:
    for method in ("conversations.create", "conversations.invite", "conversations.setTopic", "pins.add"):
        bot.fake.throttle(method, count=1, retry_after=0)
    bot.fake.throttle("chat.postMessage", count=1, retry_after=1)
    with bot_errors() as errors:
        await bot.command("declare P1 Checkout is down")
    await _assert_set_up_once(bot)
    assert len(bot.fake.calls_to("conversations.create")) == 2  # one 429, one success
    assert [r["response_type"] for r in bot.fake.responses] == ["in_channel"], "no problem to report"
    assert not errors.records, errors.describe()


async def test_5xx_on_channel_creation_keeps_the_incident_and_retry_finishes_it(bot: BotHarness) -> None:
    bot.fake.server_error("conversations.create", count=1, status=503)
    await bot.command("declare P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.channel_id is None
    assert incident.setup_error and "creating the channel" in incident.setup_error
    assert "INC-1 is saved" in bot.last_reply() and "Retry setup" in bot.last_reply()
    assert _incident_channels(bot) == []
    assert [e.kind for e in await bot.timeline(1)] == [Kind.DECLARED, Kind.CHAT_ERROR]

    await _retry_setup(bot)
    await _assert_set_up_once(bot)
    # A second press after success changes nothing.
    await _retry_setup(bot)
    await _assert_set_up_once(bot)


async def test_a_burst_of_5xx_needs_several_retries_and_still_ends_with_one_of_each(bot: BotHarness) -> None:
    bot.fake.server_error("conversations.create", count=3, status=502)
    await bot.command("declare P1 Checkout is down")
    for _ in range(3):
        await _retry_setup(bot)
    await _assert_set_up_once(bot)
    errors = [e for e in await bot.timeline(1) if e.kind == Kind.CHAT_ERROR]
    assert len(errors) == 3, "every failed attempt is on the timeline"
    # Announced once, when declared; each failed retry tells only its clicker what is still missing.
    kinds = [r["response_type"] for r in bot.fake.responses]
    assert kinds == ["in_channel", "ephemeral", "ephemeral", "ephemeral", "ephemeral"], kinds


async def test_retry_setup_from_a_public_message_answers_the_clicker_and_keeps_the_message(bot: BotHarness) -> None:
    """A Retry setup button can sit on a message everyone sees (the alert card in #alerts): the answer goes
    to the one who pressed it; only an ephemeral message, theirs alone, is replaced by it."""
    bot.fake.server_error("conversations.create", count=2, status=503)
    await bot.command("declare P1 Checkout is down", channel="C0GENERAL")
    [public] = [m for m in bot.fake.messages("C0GENERAL") if m.ephemeral_to is None]
    before = public.text
    for _ in range(2):  # the first retry fails again, the second one sets it up
        await bot.click(ActionId.RETRY_SETUP, "1", channel="C0GENERAL", message_ts=public.ts)
        assert public.text == before and not public.edited
    await _assert_set_up_once(bot)
    assert "INC-1 is set up" in bot.last_reply()


async def test_5xx_on_the_summary_post_is_retried_without_a_second_channel(bot: BotHarness) -> None:
    bot.fake.server_error("chat.postMessage", count=1)
    await bot.command("declare P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.channel_id and incident.summary_ts is None
    assert incident.announcement_ts, "the announcement does not wait for the summary"
    await _retry_setup(bot)
    await _assert_set_up_once(bot)


async def test_5xx_on_every_step_at_once(bot: BotHarness) -> None:
    """The first call of each step fails; the retry must finish each one exactly once."""
    bot.fake.server_error("chat.postMessage", count=2)  # summary and announcement
    await bot.command("declare P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.summary_ts is None and incident.announcement_ts is None
    await _retry_setup(bot)
    await _assert_set_up_once(bot)


@pytest.mark.parametrize(
    ("method", "step"),
    [
        # The summary was posted; only the pin failed. Retrying must pin that message, not post another.
        pytest.param("pins.add", "pinning the summary", id="pin-no-second-summary"),
        # `Retry setup` says finished steps are skipped: an invite (or topic) that failed is not finished.
        pytest.param("conversations.invite", "inviting the declarer", id="invite"),
        pytest.param("conversations.setTopic", "setting the topic", id="topic"),
    ],
)
async def test_5xx_on_one_idempotent_step_is_redone_by_retry(bot: BotHarness, method: str, step: str) -> None:
    bot.fake.server_error(method, count=1)
    await bot.command("declare P1 Checkout is down")
    assert f"{step} failed" in ((await bot.incident(1)).setup_error or "")
    await _retry_setup(bot)
    await _assert_set_up_once(bot)


async def test_retry_setup_pressed_twice_at_once_creates_one_channel(bot: BotHarness) -> None:
    """A double click (or two people pressing the button) while Slack is slow."""
    bot.fake.server_error("conversations.create", count=1)
    await bot.command("declare P1 Checkout is down")
    clicks = [
        bot.click(ActionId.RETRY_SETUP, "1", channel="C0GENERAL", user=user, settle=False)
        for user in ("U0ALICE", "U0BOB")
    ]
    assert {r.status_code for r in await asyncio.gather(*clicks)} == {200}
    await bot.settle()
    await _assert_set_up_once(bot)


async def test_no_database_connection_is_held_while_slack_makes_us_wait(bot: BotHarness) -> None:
    """A declare storm meets Slack's tier-2 limit: every setup sleeps on Retry-After for up to a minute.

    If each sleeping setup holds a pooled connection, a storm exhausts the pool (5 + 10 by default)
    and new declares time out before their row is stored (benchmarks/declare_ratelimit.py shows it).
    """
    bot.fake.throttle("conversations.create", count=1, retry_after=2)
    pools = [bot.deps.db.engine.pool, bot.deps.db.for_pager().engine.pool]
    task = asyncio.ensure_future(bot.command("declare P1 Checkout is down", settle=False))
    for _ in range(200):
        if bot.fake.calls_to("conversations.create"):
            break
        await asyncio.sleep(0.01)
    # Sampled through the 2 s Retry-After sleep: other work (planning the incident's reminder, say)
    # may hold a connection for a moment, but a sleeping setup that held one would hold it throughout.
    # (Per task, tests/session_guard.py checks the same on every Slack call of the suite.)
    samples = []
    for _ in range(40):
        await asyncio.sleep(0.025)
        samples.append(sum(pool.checkedout() for pool in pools))  # type: ignore[attr-defined]
    held = min(samples)
    await task
    await bot.settle()
    await _assert_set_up_once(bot)
    assert held == 0, f"{held} database connection(s) held all the while Slack made us wait: {samples}"


async def test_a_long_429_streak_on_channel_creation_is_waited_out(bot: BotHarness) -> None:
    bot.fake.throttle("conversations.create", count=6, retry_after=0)
    await bot.command("declare P1 Checkout is down")
    await _assert_set_up_once(bot)


async def test_a_form_slack_opened_too_late_says_to_try_again(bot: BotHarness) -> None:
    """The trigger lives 3 s; when the bot was too busy to use it, Slack's code alone tells nobody what to do."""
    bot.fake.fail("views.open", "expired_trigger_id")
    await bot.command("declare")
    reply = bot.last_reply()
    assert "3 seconds" in reply and "try again" in reply and "expired_trigger_id" not in reply, reply


@pytest.mark.parametrize(
    ("method", "step", "acted"),
    [
        # Slack (or a proxy) closed a keep-alive connection, twice: slack_sdk sends a call once more by itself.
        pytest.param("conversations.setTopic", "setting the topic", False, id="topic-dropped"),
        pytest.param("conversations.invite", "inviting the declarer", False, id="invite-dropped"),
        # Slack created the channel, but its answer was cut short: the retry must find it, not make another.
        pytest.param("conversations.create", "creating the channel", True, id="create-answer-cut"),
    ],
)
async def test_a_dropped_connection_is_a_network_failure_that_retry_finishes(
    bot: BotHarness, method: str, step: str, acted: bool
) -> None:
    bot.fake.disconnect(method, count=1 if acted else 2, acted=acted)
    with bot_errors() as errors:
        await bot.command("declare P1 Checkout is down")
    assert not errors.records, errors.describe()  # a network blip, not a bug with a stack trace
    setup_error = (await bot.incident(1)).setup_error or ""
    assert f"{step} failed (unreachable)" in setup_error, setup_error
    await _retry_setup(bot)
    await _assert_set_up_once(bot)
