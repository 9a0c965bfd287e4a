"""The *Publish update* button (summary and reminders): opens the form, prefilled with the last public update."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.slack import blocks
from bot.slack.adapters.statuspage import publish_modal
from bot.slack.listeners.actions.incident import incident_number
from bot.slack.listeners.common import guarded
from bot.slack.listeners.forms import open_then_fill
from bot.statuspage import flows


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(blocks.ActionId.PUBLISH)
    async def open_publish(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()

        async def form() -> dict[str, Any]:
            # The button's number is a hint: the flow re-reads the incident and checks who may publish it
            # (which may wait on Slack: the form opens empty first, as the trigger expires in 3 s).
            start = await flows.prefill(deps, incident_id=incident_number(body), actor=body["user"]["id"])
            draft = start.draft
            return publish_modal(
                start.incident,
                components=start.components,
                impact=draft.impact,
                chosen=draft.components,
                title=draft.title,
                message=draft.message,
            )

        async def work() -> None:
            await open_then_fill(
                client, trigger_id=body["trigger_id"], step="open the publish form", title="Publish update", build=form
            )

        await guarded(respond, work)
