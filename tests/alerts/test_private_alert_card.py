"""The alert card sits in the alerts channel: a private incident declared from it is not named there."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, action_ids, alert_messages, rendered, send
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {**AUTO}


async def test_the_card_says_a_private_incident_was_declared_and_nothing_more(bot: BotHarness) -> None:
    bot.fake.add_user("U0MALLORY", "mallory")
    bot.fake.channels["C0ALERTS"].members.add("U0MALLORY")
    # category=security proposes the security-breach playbook, which makes the incident private.
    await send(bot, p.alertmanager([p.am_alert("VaultTokenLeak", severity="critical", category="security")]))
    incident = await bot.incident(1)
    assert incident.private and incident.channel_id

    # Mallory reads #alerts but not the private channel: for her, INC-1 does not exist...
    await bot.command("INC-1 timeline", user="U0MALLORY", channel="C0GENERAL")
    assert "There is no incident INC-1 that you can see" in bot.last_reply()
    # ...so the card says what the #incidents announcement says of it, and no more.
    [card] = alert_messages(bot)
    shown = rendered(card)
    assert f"🔒 A private {incident.severity} incident — declared automatically" in shown
    assert "INC-1" not in shown and incident.channel_id not in shown and "investigating" not in shown, shown
    assert action_ids(card) == []  # no Retry setup or Resolve on the public card


async def test_the_webhook_answer_does_not_name_a_private_incident_either(bot: BotHarness) -> None:
    """The sender (Alertmanager, its logs, whoever reads them) is outside the incident's channel too: a repeat
    delivery linked to a private incident was answered with its ref."""
    body = p.alertmanager([p.am_alert("VaultTokenLeak", severity="critical", category="security")])
    await send(bot, body)
    assert (await bot.incident(1)).private
    again = await send(bot, body)
    assert again.status_code == 200 and again.json()["status"] == "accepted"
    assert again.json()["incident"] == "private" and "INC-1" not in again.text
    public = p.alertmanager([p.am_alert("HighErrorRate", severity="critical")], group_key="{}:{alertname=x}")
    await send(bot, public)
    assert (await send(bot, public)).json()["incident"] == "INC-2"
