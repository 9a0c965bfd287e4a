"""The declare form refuses what `/incident declare` refuses: a service or playbook the bot does not know."""

from __future__ import annotations

from typing import Any

import pytest
from sqlmodel import select

from bot.incidents.models import Incident
from bot.slack.blocks import CallbackId
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"services": {"gateway": {"health_url": "https://gateway.example.com/health"}}}


def _select(value: str) -> dict[str, Any]:
    return {"value": {"type": "static_select", "selected_option": {"value": value}}}


async def test_a_service_or_playbook_gone_from_the_config_keeps_the_form_open(bot: BotHarness) -> None:
    """The form lists bot.yml's services when it opens; one taken out of bot.yml before the submit was
    stored as said, an incident on a service nothing can check, restart or page for."""
    known = sorted(bot.deps.settings.config.services)
    assert known and "retired-api" not in known
    values = {
        "title": {"value": {"type": "plain_text_input", "value": "Checkout down"}},
        "severity": _select("P2"),
        "service": _select("retired-api"),
        "playbook": _select("no-such-playbook"),
    }
    refused = await bot.submit(CallbackId.DECLARE, values, private_metadata="C0GENERAL")
    answer = refused.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"service", "playbook"} and "retired-api" in answer["errors"]["service"]
    async with bot.deps.db.session() as session:
        assert (await session.exec(select(Incident))).all() == []

    values |= {"service": _select(known[0]), "playbook": _select("service-down")}
    await bot.submit(CallbackId.DECLARE, values, private_metadata="C0GENERAL")
    incident = await bot.incident(1)
    assert (incident.service, incident.playbook_id, incident.severity) == (known[0], "service-down", "P2")


@pytest.mark.parametrize("bot_config", [{}])
async def test_with_no_services_in_the_config_the_form_takes_any_as_the_command_does(bot: BotHarness) -> None:
    """`/incident declare service:x` takes any service when bot.yml names none; so does the form."""
    values = {"title": {"value": {"type": "plain_text_input", "value": "Search down"}}, "service": _select("search")}
    await bot.submit(CallbackId.DECLARE, values, private_metadata="C0GENERAL")
    assert (await bot.incident(1)).service == "search"
