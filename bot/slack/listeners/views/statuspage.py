"""The *Publish update* form's submission: acked at once (with field errors), published after the ack."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.exceptions import BotError
from bot.incidents.grammar import clean
from bot.slack.adapters.statuspage import PUBLISH_FORM
from bot.slack.listeners.commands.statuspage import published_reply
from bot.slack.listeners.views.incident import form_value, tell
from bot.slack.text import escape
from bot.statuspage import flows
from bot.statuspage.models import Impact


def selected(view: dict[str, Any], block_id: str) -> list[str]:
    element = view.get("state", {}).get("values", {}).get(block_id, {}).get("value", {})
    return [str(o.get("value")) for o in element.get("selected_options") or [] if o.get("value")]


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(PUBLISH_FORM)
    async def publish_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        message = clean(form_value(view, "message") or "").strip()
        impact = form_value(view, "impact") or ""
        errors = {}
        if not message:
            errors["message"] = "Write what the public should read."
        if impact not in {i.value for i in Impact}:
            errors["impact"] = "Pick an impact."
        if errors:
            await ack(response_action="errors", errors=errors)
            return
        await ack()
        user = body["user"]["id"]
        metadata = view.get("private_metadata") or ""
        try:
            published = await flows.publish(
                deps,
                incident_id=int(metadata) if metadata.isascii() and metadata.isdigit() and len(metadata) < 10 else 0,
                actor=user,
                message=message,
                impact=Impact(impact),
                components=selected(view, "components"),
                title=form_value(view, "title"),
            )
        except BotError as exc:
            await tell(client, user=user, channel=None, text=f"⚠️ {escape(str(exc))}")
            return
        await tell(client, user=user, channel=published.incident.channel_id, text=published_reply(published))
