"""Deliveries that arrive out of order (a retry, the other Alertmanager of an HA pair, a slow replica)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, action_ids, alert_messages, groups, rendered, send
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return AUTO


def _offers(bot: BotHarness, channel: str) -> int:
    return sum("alert_resolve_incident" in action_ids(m) for m in bot.fake.messages(channel))


async def test_a_late_resolve_of_an_earlier_firing_does_not_clear_the_alert_that_fires_now(bot: BotHarness) -> None:
    """The alert fired at 08:58, cleared at 09:10 and fired again at 09:12; the 09:10 resolve arrives last.
    It said the alert had cleared while it fired: the card turned green and the responders were offered
    to resolve an incident that was still burning."""
    first = p.am_alert(severity="critical", starts_at="2026-11-20T08:58:30Z")
    again = dict(first, startsAt="2026-11-20T09:12:00Z")
    await send(bot, p.alertmanager([first]))
    channel = (await bot.incident(1)).channel_id or ""
    await send(bot, p.alertmanager([again]))
    await send(bot, p.alertmanager([dict(first, status="resolved", endsAt="2026-11-20T09:10:00Z")]))

    [group] = await groups(bot)
    assert group.status == "firing" and group.resolved_at is None and not group.resolve_offer_pending
    assert _offers(bot, channel) == 0
    assert "RESOLVED" not in rendered(alert_messages(bot)[0]).upper()
    assert (await bot.incident(1)).is_open

    # The resolve of the occurrence that fires now still clears it.
    await send(bot, p.alertmanager([dict(again, status="resolved", endsAt="2026-11-20T09:20:00Z")]))
    [group] = await groups(bot)
    assert group.status == "resolved" and _offers(bot, channel) == 1
