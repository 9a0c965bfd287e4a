"""The channel's catch-up (pages sent before the incident channel existed) when Slack fails for now to
add one of the people paged: only those added are recorded, IncidentChannelReady's work is retried,
and the retry adds the rest without mentioning the page again."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.escalation.models import PageTarget, TargetKind
from tests.escalation.slack.conftest import Starter, escalator, page_dms, page_lines
from tests.harness import BotHarness, until

TWO_PEOPLE = {"escalation": {"levels": [{"name": "First", "after": "0m", "notify": ["U0LEAD", "U0CTO"]}]}}


async def invited(bot: BotHarness) -> dict[str, bool]:
    async with bot.deps.db.session() as session:
        rows = (await session.exec(select(PageTarget).where(col(PageTarget.kind) == TargetKind.USER))).all()
    return {row.recipient: row.invited for row in rows}


async def test_people_slack_failed_to_add_at_the_catch_up_are_added_by_its_retry(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(TWO_PEOPLE)
    fake = bot.fake
    created = fake.hold("conversations.create")  # Slack makes the channel wait
    await bot.command("declare P1 Checkout is down", settle=False)
    await until(lambda: page_dms(fake, "U0LEAD") and page_dms(fake, "U0CTO"))
    for _ in range(250):  # the page is recorded; its channel half is left to the catch-up
        if [p for p in await escalator(bot).pages(1) if p.sent_at]:
            break
        await asyncio.sleep(0.02)
    invite = fake.hold("conversations.invite", lambda args: args.get("users") == "U0CTO")
    created.set()
    await until(lambda: any(method == "conversations.invite" for method, _ in fake.held))
    fake.fail("conversations.invite", "internal_error")  # the catch-up's invitation of U0CTO, once
    invite.set()
    await bot.settle()

    incident = await bot.incident(1)
    assert incident.channel_id is not None
    members = fake.channels[incident.channel_id].members
    assert "U0LEAD" in members and "U0CTO" not in members
    assert await invited(bot) == {"U0LEAD": True, "U0CTO": False}  # only who Slack added
    assert incident.channel_ready_at is None  # the channel's work is not noted done: it is retried

    clock.advance(timedelta(minutes=3))  # the retry is due
    assert bot.deps.setup_sweep is not None
    await bot.deps.setup_sweep.check()
    await bot.settle()

    incident = await bot.incident(1)
    assert incident.channel_id is not None
    assert "U0CTO" in fake.channels[incident.channel_id].members
    assert await invited(bot) == {"U0LEAD": True, "U0CTO": True}
    assert incident.channel_ready_at is not None
    assert page_lines(fake, incident.channel_id) == ["📟 Paged level 1 (First): <@U0LEAD>, <@U0CTO>"]  # once
    lead_invites = [c for c in fake.calls_to("conversations.invite") if c.args.get("users") == "U0LEAD"]
    assert len(lead_invites) == 1  # added once, not again by the retry
