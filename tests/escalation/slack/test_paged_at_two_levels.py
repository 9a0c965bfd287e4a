"""Someone on call at two levels: the later level's DM is a one-line note with the Acknowledge button."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.escalation.oncall import on_call_at
from bot.postmortem import service
from bot.slack.adapters.escalation import PAGE_ACK
from bot.timeline.models import TimelineEvent
from tests.escalation.slack.conftest import (
    CONFIG,
    LEVELS,
    Starter,
    button_values,
    escalator,
    page_dms,
    page_lines,
    tick,
)


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


async def test_the_channel_the_timeline_and_the_postmortem_say_the_team_lead_was_already_paged(
    start: Starter, clock: FakeClock
) -> None:
    """The level-2 note is not a new page: the channel, the timeline and the post-mortem's paging section say
    whom it reached was paged at level 1 and told it escalated."""
    oncall = on_call_at(BotConfig.model_validate(CONFIG).oncall, clock.now())
    assert oncall is not None
    levels = [LEVELS[0], {"name": "Team lead", "after": "15m", "notify": [oncall]}, LEVELS[2]]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    await tick(bot, clock, timedelta(minutes=15))
    assert page_lines(bot.fake, incident.channel_id) == [
        f"📟 Paged level 1 (On-call engineer): <@{oncall}>",
        f"📟 Level 2 (Team lead): <@{oncall}> (already paged at level 1, told it escalated)",
    ]
    async with bot.deps.db.session() as session:
        found = await session.exec(
            select(TimelineEvent).where(TimelineEvent.kind == "page").order_by(col(TimelineEvent.id))
        )
        texts = [e.text for e in found.all()]
        data = await service.build(session, incident_id=1, now=clock.now())
    assert texts == [
        "Paged level 1 (On-call engineer)",
        "Level 2 (Team lead): already paged at level 1, told it escalated",
    ]
    assert [(e.kind, e.level, e.who, e.text) for e in data.escalations] == [
        ("page", "1 (On-call engineer)", [oncall], ""),
        ("page", "2 (Team lead)", [oncall], f"<@{oncall}> already paged at level 1, told it escalated"),
    ]
    assert (data.pages, data.page_notes) == (1, 1)  # the note is not a second page
