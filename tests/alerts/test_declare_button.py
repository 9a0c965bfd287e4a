"""The Declare incident button on an alert: a prefilled form, one incident however many submit it."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts import payloads as p
from tests.alerts.helpers import API, action_ids, alert_messages, button_value, groups, incident_count, rendered, send
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"services": {**API, "web": {}}}


def _state(view: dict[str, Any], **override: Any) -> dict[str, Any]:
    """The submitted values: the form's initial values, as Slack sends them when the user changes nothing."""
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        element = block.get("element", {})
        block_id = block["block_id"]
        if element.get("type") == "static_select":
            option = override.get(block_id, element.get("initial_option"))
            values[block_id] = {"value": {"type": "static_select", "selected_option": option}}
        else:
            values[block_id] = {
                "value": {"type": "plain_text_input", "value": override.get(block_id, element.get("initial_value"))}
            }
    return values


async def _open_form(bot: BotHarness, *, user: str = "U0BOB") -> dict[str, Any]:
    message = alert_messages(bot)[-1]
    await bot.click(
        "alert_declare", button_value(message, "alert_declare"), user=user, channel="C0ALERTS", message_ts=message.ts
    )
    return bot.fake.views[-1]["view"]


async def test_declare_button_opens_a_prefilled_form_and_declares(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="warning", service="api")]))
    view = await _open_form(bot)
    assert view["callback_id"] == "alert_declare_submit"
    by_id = {b["block_id"]: b["element"] for b in view["blocks"]}
    assert by_id["title"]["initial_value"] == "HighErrorRate: Checkout error rate above 5%"
    assert by_id["severity"]["initial_option"]["value"] == "P3"  # severity=warning
    assert by_id["service"]["initial_option"]["value"] == "api"
    assert "5xx ratio is 7.5%" in by_id["description"]["initial_value"]

    await bot.submit("alert_declare_submit", _state(view), user="U0BOB", private_metadata=view["private_metadata"])
    incident = await bot.incident(1)
    assert (incident.severity, incident.service, incident.declared_by) == ("P3", "api", "U0BOB")
    [message] = alert_messages(bot)
    assert "INC-1" in rendered(message) and "declared from this alert" in rendered(message)
    assert action_ids(message) == []
    [group] = await groups(bot)
    assert group.incident_id == 1 and group.declared_how == "button"
    assert any("INC-1 declared from the alert" in m.text for m in bot.fake.dms("U0BOB"))


async def test_the_form_can_change_the_proposal(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="warning", service="api")]))
    view = await _open_form(bot)
    p1 = {"text": {"type": "plain_text", "text": "P1"}, "value": "P1"}
    await bot.submit(
        "alert_declare_submit",
        _state(view, severity=p1, title="Checkout is down"),
        user="U0BOB",
        private_metadata=view["private_metadata"],
    )
    incident = await bot.incident(1)
    assert (incident.severity, incident.title) == ("P1", "Checkout is down")


async def test_two_people_declaring_the_same_alert_make_one_incident(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="warning")]))
    first = await _open_form(bot, user="U0BOB")
    second = await _open_form(bot, user="U0CAROL")
    await bot.submit("alert_declare_submit", _state(first), user="U0BOB", private_metadata=first["private_metadata"])
    await bot.submit(
        "alert_declare_submit", _state(second), user="U0CAROL", private_metadata=second["private_metadata"]
    )
    assert await incident_count(bot) == 1
    assert any("already INC-1" in m.text for m in bot.fake.dms("U0CAROL"))


async def test_clicking_declare_on_an_already_declared_alert_says_so(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="warning")]))
    message = alert_messages(bot)[-1]
    value = button_value(message, "alert_declare")
    view = await _open_form(bot)
    await bot.submit("alert_declare_submit", _state(view), user="U0BOB", private_metadata=view["private_metadata"])
    views_before = len(bot.fake.views)
    await bot.click("alert_declare", value, user="U0CAROL", channel="C0ALERTS", message_ts=message.ts)
    assert len(bot.fake.views) == views_before
    assert "already INC-1" in bot.last_reply()


async def test_an_empty_title_keeps_the_form_open(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="warning")]))
    view = await _open_form(bot)
    response = await bot.submit(
        "alert_declare_submit", _state(view, title=""), user="U0BOB", private_metadata=view["private_metadata"]
    )
    assert response.json()["response_action"] == "errors"
    assert await incident_count(bot) == 0
