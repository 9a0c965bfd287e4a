"""Someone on call at two levels: the later level's DM is a one-line note with the Acknowledge button."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.escalation.oncall import on_call_at
from bot.slack.adapters.escalation import PAGE_ACK
from tests.escalation.slack.conftest import CONFIG, LEVELS, Starter, button_values, escalator, page_dms, tick


async def test_the_level_1_engineer_who_is_also_the_team_lead_gets_a_note_at_level_2(
    start: Starter, clock: FakeClock
) -> None:
    oncall = on_call_at(BotConfig.model_validate(CONFIG).oncall, clock.now())
    assert oncall is not None
    levels = [LEVELS[0], {"name": "Team lead", "after": "15m", "notify": [oncall]}, LEVELS[2]]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    await tick(bot, clock, timedelta(minutes=15))
    first, note = page_dms(bot.fake, oncall)
    assert first.text.startswith("🚨 Paged for INC-1")
    assert note.text == "⏫ INC-1 escalated to level 2 (Team lead), which is you too: you were paged at level 1"
    assert [b["type"] for b in note.blocks or []] == ["section", "actions"]  # no second 🚨 header
    level_2 = (await escalator(bot).pages(1))[1]
    assert button_values(note) == [(PAGE_ACK, f"1:{level_2.id}")]
    await tick(bot, clock, timedelta(minutes=15))
    assert len(page_dms(bot.fake, "U0CTO")) == 1  # the escalation went on to level 3 on its timer
    assert [p.sent_at is not None for p in await escalator(bot).pages(1)] == [True, True, True]
