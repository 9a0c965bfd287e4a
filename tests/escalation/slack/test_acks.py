"""Acknowledging a page through the real app and the fake Slack: the DM button, /incident ack, and
buttons that are late, damaged or name another incident."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.escalation.oncall import on_call_at
from bot.slack.adapters.escalation import PAGE_ACK
from tests.escalation.conftest import T0
from tests.escalation.slack.conftest import (
    CONFIG,
    LEVELS,
    Starter,
    button_values,
    escalator,
    page_dms,
    tick,
)


async def test_the_dm_button_acknowledges_and_stop_on_ack_cancels_the_rest(start: Starter, clock: FakeClock) -> None:
    bot = await start({**CONFIG, "escalation": {"levels": LEVELS, "stop_on": "ack"}})
    await bot.declare("P1 Checkout is down")
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None
    (dm,) = page_dms(bot.fake, oncall)
    ((action_id, value),) = button_values(dm)
    clock.advance(timedelta(minutes=4))
    await bot.click(action_id, value, user=oncall, channel=dm.channel, message_ts=dm.ts)

    incident = await bot.incident(1)
    assert incident.acknowledged_by == oncall and incident.acknowledged_at == T0 + timedelta(minutes=4)
    assert dm.edited and "Acknowledged by" in str(dm.blocks) and button_values(dm) == []
    rows = await escalator(bot).pages(1)
    assert rows[0].acknowledged_by == oncall
    assert [r.cancel_reason for r in rows[1:]] == [f"acknowledged by <@{oncall}>"] * 2
    await tick(bot, clock, timedelta(hours=1))
    assert page_dms(bot.fake, "U0LEAD") == []
    kinds = [(e.kind, e.data.get("action")) for e in await bot.timeline(1) if e.kind in ("ack", "page")]
    assert kinds == [("page", "sent"), ("ack", None), ("page", "cancelled")]


async def test_slash_ack_with_stop_on_resolve_records_the_ack_and_escalation_continues(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    clock.advance(timedelta(minutes=2))
    await bot.command("ack", user="U0CAROL", channel=incident.channel_id or "")
    await tick(bot, clock, timedelta(minutes=13))
    (lead_dm,) = page_dms(bot.fake, "U0LEAD")
    rows = await escalator(bot).pages(1)
    assert rows[0].acknowledged_by == "U0CAROL" and rows[1].acknowledged_at is None
    # The lead is told someone has it in hand, and since when, before deciding to get up for it.
    assert "Acknowledged by <@U0CAROL> at" in str(lead_dm.blocks) and button_values(lead_dm) != []
    assert "acknowledged by <@U0CAROL>" in lead_dm.text


async def test_a_second_press_after_someone_else_acknowledged(start: Starter, clock: FakeClock) -> None:
    bot = await start(
        {**CONFIG, "escalation": {"levels": [{"name": "All", "after": "0m", "notify": ["U0LEAD", "U0CTO"]}]}}
    )
    await bot.declare("P1 Checkout is down")
    (lead_dm,) = page_dms(bot.fake, "U0LEAD")
    (cto_dm,) = page_dms(bot.fake, "U0CTO")
    await bot.click(*button_values(lead_dm)[0], user="U0LEAD", channel=lead_dm.channel, message_ts=lead_dm.ts)
    await bot.click(*button_values(cto_dm)[0], user="U0CTO", channel=cto_dm.channel, message_ts=cto_dm.ts)
    assert "acknowledged already by <@U0LEAD>" in str(cto_dm.blocks)
    assert (await bot.incident(1)).acknowledged_by == "U0LEAD"


async def test_the_dm_button_after_resolve_says_so_and_changes_nothing(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None
    (dm,) = page_dms(bot.fake, oncall)
    await bot.command("resolve fixed", channel=incident.channel_id or "")
    await bot.click(*button_values(dm)[0], user=oncall, channel=dm.channel, message_ts=dm.ts)
    assert "resolved already" in str(dm.blocks) and button_values(dm) == []
    assert (await bot.incident(1)).acknowledged_at is None


async def test_a_damaged_button_value_gets_a_clear_answer(start: Starter) -> None:
    bot = await start()
    await bot.click(PAGE_ACK, "nonsense", user="U0BOB", channel=None)
    assert "old or damaged page" in bot.last_reply()


async def test_an_ack_for_someone_elses_page_is_recorded_as_for_them(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None
    (dm,) = page_dms(bot.fake, oncall)
    action, value = button_values(dm)[0]
    other = next(u for u in ("U0ALICE", "U0BOB", "U0CAROL") if u != oncall)
    await bot.click(action, value, user=other, channel=None)
    incident = await bot.incident(1)
    assert incident.acknowledged_by == other
    (ack,) = [e for e in await bot.timeline(1) if e.kind == "ack"]
    assert (ack.actor, ack.text, ack.data["for"]) == (other, f"acknowledged by {other} for {oncall}", [oncall])
    await bot.command("timeline", channel=incident.channel_id or "")
    assert f"*ack* <@{other}> for <@{oncall}>" in bot.last_reply()


async def test_a_page_button_naming_another_incident_is_refused_and_audited(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    await bot.declare("P1 Search is down", user="U0LEAD")
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None
    first_dm = page_dms(bot.fake, oncall)[0]
    action, value = button_values(first_dm)[0]
    page = value.split(":")[1]
    await bot.click(action, f"2:{page}", user=oncall, channel=None)  # INC-1's page, relabelled INC-2
    assert "There is no incident INC-2 that you can see" in bot.last_reply()
    assert (await bot.incident(2)).acknowledged_at is None and (await bot.incident(1)).acknowledged_at is None
    async with bot.deps.db.session() as session:
        from sqlmodel import select

        from bot.ops.models import AuditLog

        rows = list((await session.exec(select(AuditLog))).all())
    assert [(r.actor, r.action, r.outcome, r.incident_id) for r in rows] == [(oncall, "click:page ack", "refused", 1)]


async def test_an_ack_for_someone_elses_page_waiting_to_retry_is_recorded_as_for_whom_it_reached(
    start: Starter, clock: FakeClock
) -> None:
    """The page reached U0ALICE and waits to retry U0LEAD (Slack failed for now): it has no record of whom it
    reached yet, but someone else's ack on her DM is still hers."""
    levels = [{"name": "Leads", "after": "0m", "notify": ["U0ALICE", "U0LEAD"]}]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    bot.fake.server_error("conversations.open", after=1, status=503, count=3)  # U0LEAD's DM cannot be opened
    await bot.declare("P1 Checkout is down", user="U0BOB")
    (dm,) = page_dms(bot.fake, "U0ALICE")
    assert page_dms(bot.fake, "U0LEAD") == []
    (row,) = await escalator(bot).pages(1)
    assert row.sent_at is None and row.sent_to == []
    action, value = button_values(dm)[0]
    await bot.click(action, value, user="U0CAROL", channel=None)
    assert (await bot.incident(1)).acknowledged_by == "U0CAROL"
    (ack,) = [e for e in await bot.timeline(1) if e.kind == "ack"]
    assert (ack.actor, ack.text, ack.data["for"]) == ("U0CAROL", "acknowledged by U0CAROL for U0ALICE", ["U0ALICE"])
