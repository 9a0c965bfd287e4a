"""A card Slack posted but the bot died before saving: the next sync finds it by its metadata, never posts a second."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from bot.alerts.models import AlertGroup
from tests.alerts import payloads as p
from tests.alerts.helpers import alert_messages, groups, kill_sync_in_slack_call, processor, send
from tests.harness import BotHarness


async def test_an_alert_card_posted_before_a_crash_is_not_posted_again(bot: BotHarness) -> None:
    # Slack posts the card; the bot dies before the answer (and its ts) reaches the database.
    gate = bot.fake.hold_after("chat.postMessage", lambda args: args.get("channel") == "C0ALERTS")
    response = await send(bot, p.alertmanager([p.am_alert(severity="warning")]), settle=False)
    assert response.status_code == 200
    await kill_sync_in_slack_call(bot, gate)
    assert len(alert_messages(bot)) == 1
    [group] = await groups(bot)
    assert group.message_ts is None and group.pending

    async with bot.deps.db.session() as session:  # the dead process's lease has expired
        await session.exec(  # type: ignore[call-overload]
            update(AlertGroup).values(sync_claimed_at=bot.deps.clock.now() - timedelta(minutes=3))
        )
        await session.commit()
    await processor(bot).sweep(due_only=False)  # the next process's start-up sweep
    await bot.settle()
    [group] = await groups(bot)
    assert not group.pending
    assert len(alert_messages(bot)) == 1, f"{len(alert_messages(bot))} cards for one alert group in #alerts"
