"""A declaration with nothing to plan reads nothing on the pager's engine (bot/escalation/setup.py).

With the default bot.yml nobody is paged, and only P1 and P2 get status reminders, so a P3's
planning would read its incident to plan nothing. What is planned must not change.
"""

from __future__ import annotations

from sqlmodel import col, select

from bot.escalation.models import Reminder, ReminderKind
from tests.harness import BotHarness
from tests.incidents.test_declaration_cost import recorded


async def status_reminders(bot: BotHarness, incident_id: int) -> list[Reminder]:
    async with bot.deps.db.session() as session:
        query = select(Reminder).where(col(Reminder.incident_id) == incident_id)
        rows = (await session.exec(query.where(col(Reminder.kind) == ReminderKind.STATUS_UPDATE))).all()
    return list(rows)


async def test_a_p3_with_nobody_to_page_is_planned_without_a_read(bot: BotHarness) -> None:
    await bot.command("declare P3 Warm-up")
    pager = bot.deps.db.for_pager().engine.sync_engine
    with recorded(pager) as log:
        await bot.command("declare P3 Checkout latency")
    assert log == []
    assert await status_reminders(bot, 2) == []


async def test_a_p1_with_nobody_to_page_still_gets_its_status_reminder(bot: BotHarness) -> None:
    await bot.command("declare P1 Checkout is down")
    assert [r.seq for r in await status_reminders(bot, 1)] == [0]


async def test_a_p3_raised_to_p2_gets_its_status_reminder(bot: BotHarness) -> None:
    await bot.command("declare P3 Checkout latency")
    incident = await bot.incident(1)
    assert await status_reminders(bot, 1) == []
    await bot.command("severity P2", channel=incident.channel_id or "")
    assert len(await status_reminders(bot, 1)) == 1
