"""Channel messages, 📌 reactions and pins in incident channels become timeline events.

Slack retries deliveries (same `event_id`) it got no 200 for, and only those. `listeners/replay.py`
claims a reaction's or a pin's event id before these run. A message is stored before the ack
(`keep_message`, called by that middleware): its event id is claimed in the transaction that
stores or edits it, so a store that fails answers Slack an error and Slack's retry stores it. A
message is also stored under a unique (channel, ts) key, so nothing is stored twice.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import is_user_id
from bot.db import DATABASE_DOWN
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.grammar import clean
from bot.slack.api import call, data
from bot.slack.text import clip, escape
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
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
}
KEPT_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message", "bot_message"}


def _when(message_ts: str) -> datetime:
    try:
        return datetime.fromtimestamp(float(message_ts), tz=UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def event_channel(event: dict[str, Any]) -> str | None:
    """The channel an event happened in, whatever its shape (message, reaction, pin)."""
    item = event.get("item") or {}
    return event.get("channel") or event.get("channel_id") or item.get("channel") or None


async def still_marked(client: AsyncWebClient, *, channel_id: str, message_ts: str) -> bool:
    """After one marker is taken off, another may remain: someone else's 📌, or the pin.

    Asked of Slack (the events say only what was removed); when Slack cannot answer, the removal wins.
    """
    try:
        got = data(
            await call(
                "read a message's reactions",
                client.reactions_get(channel=channel_id, timestamp=message_ts, full=True),
            )
        )
        reactions = (got.get("message") or {}).get("reactions") or []
        if any(r.get("name") in KEY_REACTIONS and r.get("count", 1) > 0 for r in reactions):
            return True  # the channel's pins need not be read
        pins = data(await call("list the channel's pins", client.pins_list(channel=channel_id)))
    except ChatError:
        return False
    return any((item.get("message") or {}).get("ts") == message_ts for item in pins.get("items") or [])


async def mark_key(
    deps: Deps,
    client: AsyncWebClient,
    *,
    incident_id: int,
    channel_id: str,
    message_ts: str,
    key: bool,
    actor: str | None,
) -> None:
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
            text, author = clean(messages[0].get("text", "")), author_of(messages[0])
    except ChatError:
        pass
    permalink = await deps.incident_chat.permalink(channel_id=channel_id, message_ts=message_ts)
    async with deps.db.session() as session:
        # Stored now, or by a concurrent message event a moment ago: either way it is key.
        await timeline.store_message(
            session,
            incident_id=incident_id,
            channel_id=channel_id,
            message_ts=message_ts,
            at=_when(message_ts),
            actor=author or actor,
            text=text,
            permalink=permalink,
        )
        await timeline.set_key(session, channel_id=channel_id, message_ts=message_ts, key=True)


def _message_text(message: dict[str, Any]) -> str:
    """What a message says, with the files it shares named: a screenshot posted without a word is kept too.

    Stored as Slack sends message text (`&`, `<`, `>` encoded), so a file's title is encoded the same way.
    """
    text = clean(message.get("text") or "")
    if not text:  # an alert or deploy bot may say it all in attachments; their fallback is the summary
        attachments = [a for a in message.get("attachments") or [] if isinstance(a, dict)]
        text = "\n".join(clean(str(a.get("fallback") or a.get("text") or "")) for a in attachments).strip()
    files = [f for f in message.get("files") or [] if isinstance(f, dict)]
    names = [clean(str(f.get("title") or f.get("name") or "")).strip() for f in files]
    shared = " · ".join(f"📎 {escape(name)}" for name in names if name)
    return "\n".join(part for part in (text, shared) if part)


def author_of(message: dict[str, Any]) -> str | None:
    """A person's user id; for another app's message (a deploy, alert or CI bot) the app's name.

    A name is kept as text, never as an id: one shaped like a user id (`UPTIME`) is marked as an app,
    or every surface would mention it as a person.
    """
    if not message.get("bot_id"):
        return message.get("user")
    profile = message.get("bot_profile") or {}
    name = clean(str(profile.get("name") or message.get("username") or "")).strip()
    if not name:
        return message.get("user") or str(message["bot_id"])
    return clip(name, 90) + (" (app)" if is_user_id(name) else "")


def _own(event: dict[str, Any], context: dict[str, Any]) -> bool:
    """The bot's own messages (summary, notices, page mentions) are on the timeline as their own events.

    Bolt drops them before any listener (its self-event filter, from auth.test); checked here too.
    """
    bot_id, user = event.get("bot_id"), event.get("user")
    return bool(bot_id and bot_id == context.get("bot_id")) or bool(user and user == context.get("bot_user_id"))


async def keep_message(
    session: AsyncSession,
    *,
    event: dict[str, Any],
    context: dict[str, Any],
    incident_id: int,
    delivery: timeline.Delivery | None,
) -> bool:
    """Store a message in an incident channel, or apply its edit or deletion, BEFORE Slack is acked.

    Called by `listeners/replay.py` while Slack waits for its answer. Why before, and not after the
    ack with a retry of our own: Slack retries an event it got no 200 for (at once, then after 1 and
    5 minutes) and never one it did. Stored before the ack, a database blip, a failover or a crash
    at any moment is covered by Slack's retry, and nothing the bot holds in memory is needed. An
    in-process retry after the ack would be lost with the process, and bounded by our patience.
    What it costs the ack: one short transaction, no network call (the permalink comes after, in
    `add_link`). Stored once: the event's claim is in this transaction, and (channel, ts) is unique.

    True when a new message was stored (its link is added after the ack); False for a replay, an
    edit or a message the timeline does not keep.

    Other apps' messages are kept too (what was deployed when, what alerted): they are the facts a
    post-mortem is written from.
    """
    subtype = event.get("subtype")
    if subtype in IGNORED_SUBTYPES or _own(event, context):
        return False
    channel_id = str(event["channel"])
    if subtype in {"message_changed", "message_deleted"}:
        changed = event.get("message") or {}
        message_ts = str(changed.get("ts") or event.get("deleted_ts"))
        text = "(message deleted)" if subtype == "message_deleted" else _message_text(changed)
        await timeline.edit_message(session, channel_id=channel_id, message_ts=message_ts, text=text, delivery=delivery)
        return False
    if subtype not in KEPT_SUBTYPES:
        return False
    message_ts = str(event.get("ts"))
    return await timeline.store_message(
        session,
        incident_id=incident_id,
        channel_id=channel_id,
        message_ts=message_ts,
        at=_when(message_ts),
        actor=author_of(event),
        text=_message_text(event),
        delivery=delivery,
    )


async def add_link(deps: Deps, event: dict[str, Any], context: dict[str, Any]) -> None:
    """After the ack: the stored message's permalink. A failure here costs the link, never the message.

    Reached only for a message `keep_message` has just stored (the middleware answers a replay or an
    edit itself); a message outside an incident channel has no `incident_id` and is left alone.
    """
    if context.get("incident_id") is None or event.get("subtype") not in KEPT_SUBTYPES:
        return
    channel_id, message_ts = str(event["channel"]), str(event.get("ts"))
    try:
        permalink = await deps.incident_chat.permalink(
            channel_id=channel_id, message_ts=message_ts, thread_ts=event.get("thread_ts")
        )
        if permalink:
            async with deps.db.session() as session:
                await timeline.set_permalink(session, channel_id=channel_id, message_ts=message_ts, permalink=permalink)
    except DATABASE_DOWN as exc:
        log.warning("the message %s in %s is kept without its link: %s", message_ts, channel_id, type(exc).__name__)


def register(app: AsyncApp, deps: Deps) -> None:
    # `incident_id` is in the context only for events in an incident channel (see listeners/replay.py).

    @app.event("message")
    async def on_message(event: dict[str, Any], context: dict[str, Any]) -> None:
        await add_link(deps, event, context)

    async def on_key_marker(event: dict[str, Any], client: AsyncWebClient, context: dict[str, Any]) -> None:
        """📌 reactions and pins mark a message as key; removing them unmarks it."""
        incident_id = context.get("incident_id")
        item = event.get("item") or {}
        is_reaction = event["type"].startswith("reaction_")
        if incident_id is None:
            return
        if is_reaction and (event.get("reaction") not in KEY_REACTIONS or item.get("type") != "message"):
            return
        if not is_reaction and event.get("user") and event.get("user") == context.get("bot_user_id"):
            return  # the bot pins its own summary; that is not a key event
        message_ts = item.get("ts") or (item.get("message") or {}).get("ts")
        channel_id = event_channel(event)
        if not message_ts or not channel_id:
            return
        added = event["type"].endswith("_added")
        key = added or await still_marked(client, channel_id=channel_id, message_ts=str(message_ts))
        await mark_key(
            deps,
            client,
            incident_id=incident_id,
            channel_id=channel_id,
            message_ts=str(message_ts),
            key=key,
            actor=event.get("user"),
        )

    for name in ("reaction_added", "reaction_removed", "pin_added", "pin_removed"):
        app.event(name)(on_key_marker)
