"""Channel messages, 📌 reactions and pins in incident channels become timeline events.

Slack retries deliveries (same `event_id`); `listeners/replay.py` claims each event id before
these run, and a message is stored under a unique (channel, ts) key, so nothing is stored twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents import service as incidents
from bot.incidents.grammar import clean
from bot.slack.api import call, data
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

KEY_REACTIONS = {"pushpin", "round_pushpin"}
IGNORED_SUBTYPES = {
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "channel_name",
    "pinned_item",
    "unpinned_item",
    "bot_message",
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
}


def _when(message_ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(message_ts), tz=UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


async def _incident_id(deps: Deps, channel_id: str | None) -> int | None:
    if not channel_id:
        return None
    async with deps.db.session() as session:
        incident = await incidents.by_channel(session, channel_id=channel_id)
    return incident.id if incident else None


async def _permalink(client: AsyncWebClient, channel_id: str, message_ts: str) -> str | None:
    try:
        response = await call("permalink", client.chat_getPermalink(channel=channel_id, message_ts=message_ts))
    except ChatError:
        return None
    return str(data(response).get("permalink") or "") or None


async def mark_key(
    deps: Deps, client: AsyncWebClient, *, channel_id: str, message_ts: str, key: bool, actor: str | None
) -> None:
    incident_id = await _incident_id(deps, channel_id)
    if incident_id is None:
        return
    async with deps.db.session() as session:
        if await timeline.set_key(session, channel_id=channel_id, message_ts=message_ts, key=key):
            return
    if not key:
        return
    # A message from before the bot stored anything (or the bot's own): fetch and keep it as key.
    text, author = "", None
    try:
        response = await call(
            "fetch pinned message",
            client.conversations_history(channel=channel_id, latest=message_ts, inclusive=True, limit=1),
        )
        messages = data(response).get("messages") or []
        if messages:
            text, author = clean(messages[0].get("text", "")), messages[0].get("user")
    except ChatError:
        pass
    async with deps.db.session() as session:
        stored = await timeline.store_message(
            session,
            incident_id=incident_id,
            channel_id=channel_id,
            message_ts=message_ts,
            at=_when(message_ts),
            actor=author or actor,
            text=text,
            permalink=await _permalink(client, channel_id, message_ts),
        )
        # Stored now, or by a concurrent message event a moment ago: either way it is key.
        del stored
        await timeline.set_key(session, channel_id=channel_id, message_ts=message_ts, key=True)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.event("message")
    async def on_message(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        subtype = event.get("subtype")
        if subtype in IGNORED_SUBTYPES or event.get("bot_id"):
            return
        channel_id = event.get("channel")
        incident_id = await _incident_id(deps, channel_id)
        if incident_id is None:
            return
        assert channel_id
        if subtype == "message_changed":
            changed = event.get("message") or {}
            async with deps.db.session() as session:
                await timeline.edit_message(
                    session,
                    channel_id=channel_id,
                    message_ts=str(changed.get("ts")),
                    text=clean(changed.get("text", "")),
                )
            return
        if subtype == "message_deleted":
            async with deps.db.session() as session:
                await timeline.edit_message(
                    session, channel_id=channel_id, message_ts=str(event.get("deleted_ts")), text="(message deleted)"
                )
            return
        if subtype not in {None, "file_share", "thread_broadcast", "me_message"}:
            return
        message_ts = str(event.get("ts"))
        async with deps.db.session() as session:
            await timeline.store_message(
                session,
                incident_id=incident_id,
                channel_id=channel_id,
                message_ts=message_ts,
                at=_when(message_ts),
                actor=event.get("user"),
                text=clean(event.get("text", "")),
                permalink=await _permalink(client, channel_id, message_ts),
            )

    @app.event("reaction_added")
    async def on_reaction_added(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        await _reaction(body, event, client, key=True)

    @app.event("reaction_removed")
    async def on_reaction_removed(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient) -> None:
        await _reaction(body, event, client, key=False)

    async def _reaction(body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, *, key: bool) -> None:
        item = event.get("item") or {}
        if event.get("reaction") not in KEY_REACTIONS or item.get("type") != "message":
            return
        await mark_key(
            deps,
            client,
            channel_id=item.get("channel", ""),
            message_ts=str(item.get("ts")),
            key=key,
            actor=event.get("user"),
        )

    @app.event("pin_added")
    async def on_pin_added(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await _pin(body, event, client, context, key=True)

    @app.event("pin_removed")
    async def on_pin_removed(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]
    ) -> None:
        await _pin(body, event, client, context, key=False)

    async def _pin(
        body: dict[str, Any], event: dict[str, Any], client: AsyncWebClient, context: dict[str, Any], *, key: bool
    ) -> None:
        if event.get("user") and event.get("user") == context.get("bot_user_id"):
            return  # the bot pins its own summary; that is not a key event
        item = event.get("item") or {}
        message = item.get("message") or {}
        message_ts = message.get("ts") or item.get("ts") or event.get("event_ts")
        channel_id = event.get("channel_id") or item.get("channel")
        if not message_ts or not channel_id:
            return
        await mark_key(
            deps, client, channel_id=channel_id, message_ts=str(message_ts), key=key, actor=event.get("user")
        )
