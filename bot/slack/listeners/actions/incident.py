"""Buttons on the incident summary (and on pages): Acknowledge, Update status, Resolve, Retry setup."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.exceptions import InvalidState, UsageError
from bot.incidents import flows, service
from bot.slack import blocks
from bot.slack.api import call
from bot.slack.listeners.commands.incident import _after_declare, ack_reply
from bot.slack.listeners.common import guarded


def incident_number(body: dict[str, Any]) -> int:
    value = (body.get("actions") or [{}])[0].get("value", "")
    if not str(value).isdigit():
        raise UsageError(
            "This button carries no incident number; it may come from an old message.", usage="/incident list"
        )
    return int(value)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(blocks.ActionId.ACK)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            number = incident_number(body)
            user = body["user"]["id"]
            outcome = await flows.acknowledge(deps, incident_id=number, actor=user)
            await respond(text=ack_reply(outcome), response_type="ephemeral", replace_original=False)

        await guarded(respond, work)

    forms = {
        blocks.ActionId.UPDATE: ("open the update form", blocks.update_modal),
        blocks.ActionId.RESOLVE: ("open the resolve form", blocks.resolve_modal),
    }

    async def open_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        """Update status / Resolve: a form for an open incident (the trigger expires in 3 s: open it first)."""
        await ack()
        step, build = forms[body["actions"][0]["action_id"]]

        async def work() -> None:
            async with deps.db.session() as session:
                incident = await service.get(session, number=incident_number(body))
            if not incident.is_open:
                raise InvalidState(f"{incident.ref} is resolved already.")
            await call(step, client.views_open(trigger_id=body["trigger_id"], view=build(incident)))

        await guarded(respond, work)

    for action_id in forms:
        app.action(action_id)(open_form)

    @app.action(blocks.ActionId.RETRY_SETUP)
    async def retry_setup(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            outcome = await flows.finish_setup(deps, incident_id=incident_number(body), actor=body["user"]["id"])
            if outcome.problems:
                await _after_declare(respond, outcome)
            else:
                incident = outcome.incident
                await respond(
                    text=f"✅ {incident.ref} is set up: <#{incident.channel_id}>",
                    response_type="ephemeral",
                    replace_original=True,
                )

        await guarded(respond, work)
