"""A severity change after an acknowledgement, through the real app and the fake Slack.

The rule (`policy.stopped_by_ack`): an ack under a severity that stops on ack stops what was not sent by
then, at that severity and every less urgent one; only a more urgent severity that pages until resolve
pages again. An ack made under a severity that pages until resolve, then raised to one that stops on ack,
is stopped by it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.escalation.oncall import on_call_at
from tests.escalation.slack.conftest import CONFIG, LEVELS, Starter, button_values, escalator, page_dms, tick
from tests.harness import BotHarness

SEVERITY = {"P3": {"levels": 1}, "P4": {"levels": 1}}
# P1 stops on the first acknowledgement (PagerDuty-style), P2 pages until resolved (the runbook's default).
P1_ON_ACK: dict[str, Any] = {
    **CONFIG,
    "escalation": {"levels": LEVELS, "severity": {**SEVERITY, "P1": {"stop_on": "ack"}}},
}
# The other way round: P2 stops on ack, P1 pages until resolved.
P2_ON_ACK: dict[str, Any] = {
    **CONFIG,
    "escalation": {"levels": LEVELS, "severity": {**SEVERITY, "P2": {"stop_on": "ack"}}},
}


async def ack_the_page(bot: BotHarness, clock: FakeClock) -> str:
    """The on-call engineer presses Acknowledge on their level-1 DM; returns who they are."""
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None
    (dm,) = page_dms(bot.fake, oncall)
    await bot.click(*button_values(dm)[0], user=oncall, channel=dm.channel, message_ts=dm.ts)
    await bot.settle()
    return oncall


async def sev(bot: BotHarness, severity: str, user: str = "U0ALICE") -> None:
    incident = await bot.incident(1)
    await bot.command(f"sev {severity}", user=user, channel=incident.channel_id or "")
    await bot.settle()
    assert (await bot.incident(1)).severity == severity


def lead_and_cto_pages(bot: BotHarness) -> tuple[int, int]:
    return len(page_dms(bot.fake, "U0LEAD")), len(page_dms(bot.fake, "U0CTO"))


async def test_acked_p1_lowered_to_p2_before_level_2_is_due_pages_neither_lead_nor_cto(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(P1_ON_ACK)
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    clock.advance(timedelta(minutes=3))
    oncall = await ack_the_page(bot, clock)
    clock.advance(timedelta(minutes=2))
    await sev(bot, "P2", user=oncall)
    await tick(bot, clock, timedelta(minutes=15))
    await tick(bot, clock, timedelta(hours=1))
    assert lead_and_cto_pages(bot) == (0, 0)
    rows = await escalator(bot).pages(1)
    assert [(r.level, r.sent_at is not None, r.cancelled_at is not None) for r in rows] == [
        (1, True, False),
        (2, False, True),
        (3, False, True),
    ]
    replanned = [e for e in await bot.timeline(1) if e.kind == "page" and e.data.get("action") == "replanned"]
    assert replanned == []


async def test_acked_p1_lowered_to_p2_after_level_2_was_due_does_not_page_it_late(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(P1_ON_ACK)
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    clock.advance(timedelta(minutes=3))
    oncall = await ack_the_page(bot, clock)
    clock.advance(timedelta(minutes=17))  # level 2 would have been due at 15m: a re-plan would page it at once
    await sev(bot, "P2", user=oncall)
    await tick(bot, clock, timedelta(hours=1))
    assert lead_and_cto_pages(bot) == (0, 0)


async def test_acked_p1_lowered_to_p3_then_raised_to_p2_stays_stopped(start: Starter, clock: FakeClock) -> None:
    """P2 is still less urgent than the P1 the ack stopped: going through P3 does not bring the levels back."""
    bot = await start(P1_ON_ACK)
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    oncall = await ack_the_page(bot, clock)
    clock.advance(timedelta(minutes=5))
    await sev(bot, "P3", user=oncall)
    clock.advance(timedelta(minutes=5))
    await sev(bot, "P2", user=oncall)
    await tick(bot, clock, timedelta(hours=1))
    assert lead_and_cto_pages(bot) == (0, 0)


async def test_unacked_p1_lowered_to_p2_follows_p2s_policy(start: Starter, clock: FakeClock) -> None:
    bot = await start(P1_ON_ACK)
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    clock.advance(timedelta(minutes=5))
    await sev(bot, "P2")
    await tick(bot, clock, timedelta(minutes=10))
    assert lead_and_cto_pages(bot) == (1, 0)
    await tick(bot, clock, timedelta(minutes=15))
    assert lead_and_cto_pages(bot) == (1, 1)


async def test_acked_p2_paging_until_resolve_still_pages_when_lowered_and_raised_back(
    start: Starter, clock: FakeClock
) -> None:
    """No severity it had since the ack stops on ack: the ack stops nothing, as before."""
    bot = await start(P1_ON_ACK)
    await bot.declare("P2 Checkout is slow", user="U0LEAD")
    oncall = await ack_the_page(bot, clock)
    await sev(bot, "P3", user=oncall)
    clock.advance(timedelta(minutes=10))
    await sev(bot, "P2", user=oncall)
    await tick(bot, clock, timedelta(minutes=5))
    assert lead_and_cto_pages(bot) == (1, 0)


async def test_unacked_p3_raised_to_p1_pages_the_levels_p1_needs(start: Starter, clock: FakeClock) -> None:
    bot = await start(P1_ON_ACK)
    await bot.declare("P3 Search is slow", user="U0LEAD")
    await tick(bot, clock, timedelta(minutes=20))
    await sev(bot, "P1")
    assert lead_and_cto_pages(bot) == (1, 0)
    await tick(bot, clock, timedelta(minutes=10))
    assert lead_and_cto_pages(bot) == (1, 1)


async def test_ack_under_p2_then_raised_to_p1_that_stops_on_ack_stops(start: Starter, clock: FakeClock) -> None:
    """The ack exists, so P1's `stop_on: ack` is satisfied: the raise stops escalation instead of paging."""
    bot = await start(P1_ON_ACK)
    await bot.declare("P2 Checkout is slow", user="U0LEAD")
    clock.advance(timedelta(minutes=2))
    oncall = await ack_the_page(bot, clock)
    clock.advance(timedelta(minutes=3))
    await sev(bot, "P1", user=oncall)
    await tick(bot, clock, timedelta(hours=1))
    assert lead_and_cto_pages(bot) == (0, 0)
    rows = await escalator(bot).pages(1)
    assert [r.cancel_reason for r in rows[1:]] == ["already acknowledged; P1 stops on ack"] * 2
    # Lowered back to P2, which pages until resolve: P1's stop holds.
    await sev(bot, "P2", user=oncall)
    await tick(bot, clock, timedelta(hours=1))
    assert lead_and_cto_pages(bot) == (0, 0)


async def test_acked_p2_that_stops_on_ack_raised_to_p1_paging_until_resolve_pages_again(
    start: Starter, clock: FakeClock
) -> None:
    """A more urgent severity that pages until resolve applies its policy: the levels come back."""
    bot = await start(P2_ON_ACK)
    await bot.declare("P2 Checkout is slow", user="U0LEAD")
    oncall = await ack_the_page(bot, clock)
    await tick(bot, clock, timedelta(minutes=20))
    assert lead_and_cto_pages(bot) == (0, 0)
    await sev(bot, "P1", user=oncall)
    assert lead_and_cto_pages(bot) == (1, 0)
    await tick(bot, clock, timedelta(minutes=10))
    assert lead_and_cto_pages(bot) == (1, 1)
