"""The *Publish update* button (summary and reminders): opens the form, prefilled with the last public update."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.slack import blocks
from bot.slack.adapters.statuspage import publish_modal
from bot.slack.api import call
from bot.slack.listeners.actions.incident import incident_number
from bot.slack.listeners.common import guarded
from bot.statuspage import flows


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(blocks.ActionId.PUBLISH)
    async def open_publish(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            # The button's number is a hint: the flow re-reads the incident and checks who may publish it.
            start = await flows.prefill(deps, incident_id=incident_number(body), actor=body["user"]["id"])
            draft = start.draft
            view = publish_modal(
                start.incident,
                components=start.components,
                impact=draft.impact,
                chosen=draft.components,
                title=draft.title,
                message=draft.message,
            )
            await call("open the publish form", client.views_open(trigger_id=body["trigger_id"], view=view))

        await guarded(respond, work)
