"""Channel messages, 📌 reactions and pins in incident channels become timeline events.

Slack retries deliveries (same `event_id`) it got no 200 for, and only those. A message is stored,
and a 📌 or a pin marks its message key (its removal unmarks it), before the ack (`keep_message`,
`keep_key_mark`, called by `listeners/replay.py`): the event id is claimed in the transaction that
writes, so a write that fails answers Slack an error and Slack's retry writes it. A message is also
stored under a unique (channel, ts) key, so nothing is stored twice.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import is_user_id
from bot.db import DATABASE_DOWN
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.grammar import clean
from bot.slack.api import call, data
from bot.slack.listeners.events.channel import (
    CHANNEL_SUBTYPES,
    after_channel_change,
    keep_channel_change,
    message_time,
)
from bot.slack.text import clip, escape
from bot.timeline import deliveries, marks
from bot.timeline import service as timeline
from bot.timeline.shown import DELETED

log = logging.getLogger(__name__)

KEY_REACTIONS = {"pushpin", "round_pushpin"}
REMAINS_WITHIN = 1.0  # seconds a removal waits for Slack to say whether another marker remains
KEY_EVENTS = ("reaction_added", "reaction_removed", "pin_added", "pin_removed")
IGNORED_SUBTYPES = {
    "channel_join",
    "channel_leave",
    "channel_topic",
    "channel_purpose",
    "pinned_item",
    "unpinned_item",
    "group_join",
    "group_leave",
    "group_topic",
    "group_purpose",
}
KEPT_SUBTYPES = {None, "file_share", "thread_broadcast", "me_message", "bot_message"}


def event_channel(event: dict[str, Any]) -> str | None:
    """The channel an event happened in, whatever its shape (message, reaction, pin)."""
    item = event.get("item") or {}
    return event.get("channel") or event.get("channel_id") or item.get("channel") or None


async def still_marked(client: AsyncWebClient, *, channel_id: str, message_ts: str) -> bool:
    """After one marker is taken off, another may remain: someone else's 📌, or the pin.

    Asked of Slack before the ack, for marks put on before the timeline recorded who marked what
    (bot.timeline.marks); when Slack cannot answer, the recorded marks decide alone.
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


@dataclass(frozen=True)
class KeyMarker:
    """A 📌 reaction or a pin put on (`added`) or taken off a message, and what the event says of it.

    `remains`, for a removal: another 📌 or the pin is still on the message (`with_remaining`).
    """

    channel_id: str
    message_ts: str
    added: bool
    actor: str | None
    author: str | None = None
    text: str = ""
    permalink: str | None = None
    remains: bool = False
    marker: str = marks.PIN  # whose 📌 it is, or the pin (bot.timeline.marks)
    own: bool = False  # the bot's own message: on the timeline only while marked


async def with_remaining(client: AsyncWebClient, marker: KeyMarker) -> KeyMarker:
    """A removal, with whether the message stays marked: read from Slack before the ack (two reads at most).

    Bounded by `REMAINS_WITHIN`, so the ack keeps within Slack's 3 s: a Slack that is slow to answer
    (or makes the client wait out a rate limit) is one that cannot say, and the removal wins.
    """
    if marker.added:
        return marker
    read = still_marked(client, channel_id=marker.channel_id, message_ts=marker.message_ts)
    try:
        remains = await asyncio.wait_for(read, REMAINS_WITHIN)
    except TimeoutError:
        log.warning("Slack did not say within %ss whether %s stays marked: unmarked", REMAINS_WITHIN, marker.message_ts)
        remains = False
    return replace(marker, remains=remains)


def key_marker(event: dict[str, Any], context: dict[str, Any]) -> KeyMarker | None:
    """The key marker an event is, if any: other reactions, other items and the bot's own pins are not."""
    kind, item = str(event.get("type") or ""), event.get("item") or {}
    if kind not in KEY_EVENTS:
        return None
    is_reaction = kind.startswith("reaction_")
    if is_reaction and (event.get("reaction") not in KEY_REACTIONS or item.get("type") != "message"):
        return None
    if not is_reaction and event.get("user") and event.get("user") == context.get("bot_user_id"):
        return None  # the bot pins its own summary; that is not a key event
    message = item.get("message") or {}  # a pin carries the message; a reaction only its author
    message_ts, channel_id = item.get("ts") or message.get("ts"), event_channel(event)
    if not message_ts or not channel_id:
        return None
    return KeyMarker(
        channel_id=channel_id,
        message_ts=str(message_ts),
        added=kind.endswith("_added"),
        actor=event.get("user"),
        author=event.get("item_user") or (author_of(message) if message else None),
        text=_message_text(message) if message else "",
        permalink=message.get("permalink"),
        marker=marks.reaction(str(event.get("reaction")), event.get("user")) if is_reaction else marks.PIN,
        own=_own({"user": event.get("item_user")}, context) or bool(message and _own(message, context)),
    )


async def keep_key_mark(
    session: AsyncSession,
    *,
    marker: KeyMarker,
    context: dict[str, Any],
    incident_id: int,
    delivery: deliveries.Delivery | None,
    received_at: datetime,
) -> bool:
    """Mark a message key, or unmark it, BEFORE Slack is acked, in the transaction that claims the event.

    As `keep_message`: a failure answers Slack an error, so its retry writes it, and a late retry is
    dropped by the claim, so it cannot undo a later pin or unpin. A mark is one UPDATE, or for a
    message the timeline lacks one INSERT of it as key, with what the event says (a pin carries the
    text; a reaction only the author), and the marker's own row (whose 📌, or the pin: bot.timeline.marks).
    A removal takes that row off: the message stays key while another recorded marker remains, so one
    person's removal does not unmark a message another still marks, whatever Slack answers and in
    whatever order the events come. Marks put on before they were recorded are known only to Slack:
    what it said remains (`with_remaining`, read before this transaction, one or two Web API calls)
    keeps the message key too.
    What else only Slack knows comes after the ack, in `after_key_marker`.

    True for the first delivery (there may be a text or link to add after the ack).
    """
    context["key_marker"] = marker
    where = {"channel_id": marker.channel_id, "message_ts": marker.message_ts}
    if not marker.added:
        unmarked = await timeline.unmark(
            session,
            marker=marker.marker,
            remains=marker.remains,
            delivery=delivery,
            kept_for_mark=marker.own,
            **where,
        )
        return unmarked is not None
    stored = await timeline.mark_key(
        session,
        incident_id=incident_id,
        at=message_time(marker.message_ts, received_at=received_at),
        actor=marker.author,  # unknown (None) until Slack says it: never the person who marked it
        text=marker.text,
        permalink=marker.permalink,
        delivery=delivery,
        marker=marker.marker,
        **where,
    )
    return stored is not None


async def after_key_marker(deps: Deps, client: AsyncWebClient, marker: KeyMarker) -> None:
    """After the ack: a key message kept without its text or link (Slack could not say it then) gets them.

    Tried on every 📌 or pin event for the message, not only the first: a read of Slack that failed
    once is made again by the next one, so an empty text is not kept for good.
    """
    where = {"channel_id": marker.channel_id, "message_ts": marker.message_ts}
    try:
        async with deps.db.session() as session:
            stored = await timeline.stored_message(session, **where)
        if stored is None or (stored.text and stored.permalink):
            return
        text, author = (None, None) if stored.text else await _text_of(client, marker)
        permalink = None if stored.permalink else marker.permalink or await deps.incident_chat.permalink(**where)
        async with deps.db.session() as session:
            await timeline.fill_message(session, text=text, actor=author, permalink=permalink, **where)
    except DATABASE_DOWN as exc:
        log.warning(
            "the key message %s in %s is kept without its text or link: %s", *where.values(), type(exc).__name__
        )


async def _text_of(client: AsyncWebClient, marker: KeyMarker) -> tuple[str | None, str | None]:
    """The message's text and author: from the event (a pin), else read from Slack; None if unread.

    A 📌 event does not say whether its message is a thread reply, and the channel's history holds
    only top-level messages (and replies also sent to the channel): a message it lacks is read as a
    thread reply, which conversations.replies finds by the reply's own ts.
    """
    if marker.text:
        return marker.text, marker.author
    ts = marker.message_ts
    try:
        history = client.conversations_history(channel=marker.channel_id, latest=ts, inclusive=True, limit=1)
        message = _with_ts(await call("fetch pinned message", history), ts)
        if message is None:
            thread = client.conversations_replies(channel=marker.channel_id, ts=ts, oldest=ts, inclusive=True, limit=2)
            message = _with_ts(await call("fetch a pinned thread reply", thread), ts)
    except ChatError:
        return None, None
    if message is None:
        return None, None
    return _message_text(message) or None, author_of(message)


def _with_ts(response: AsyncSlackResponse, message_ts: str) -> dict[str, Any] | None:
    """The message with this ts in a history or replies answer (replies starts with the thread's parent)."""
    return next((m for m in data(response).get("messages") or [] if m.get("ts") == message_ts), None)


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
    delivery: deliveries.Delivery | None,
    received_at: datetime,
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
    if subtype in CHANNEL_SUBTYPES:  # True: recorded now, and `after_channel_change` follows the ack
        return await keep_channel_change(
            session, event=event, incident_id=incident_id, delivery=delivery, received_at=received_at
        )
    if subtype in {"message_changed", "message_deleted"}:
        changed = event.get("message") or {}
        message_ts = str(changed.get("ts") or event.get("deleted_ts"))
        deleted = subtype == "message_deleted"
        text = DELETED if deleted else _message_text(changed)
        where = {"channel_id": channel_id, "message_ts": message_ts}
        changed_at = str(event.get("ts") or event.get("event_ts") or "") or None  # when it was edited or deleted
        await timeline.edit_message(
            session, text=text, delivery=delivery, deleted=deleted, changed_at=changed_at, **where
        )
        return False
    if subtype not in KEPT_SUBTYPES:
        return False
    message_ts = str(event.get("ts"))
    return await timeline.store_message(
        session,
        incident_id=incident_id,
        channel_id=channel_id,
        message_ts=message_ts,
        at=message_time(message_ts, received_at=received_at),
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
        if event.get("subtype") in CHANNEL_SUBTYPES:
            await after_channel_change(deps, event, context)
        else:
            await add_link(deps, event, context)

    async def on_key_marker(client: AsyncWebClient, context: dict[str, Any]) -> None:
        """📌 reactions and pins: marked before the ack (`keep_key_mark`); what Slack must say, here."""
        marker = context.get("key_marker")
        if isinstance(marker, KeyMarker) and context.get("incident_id") is not None:
            await after_key_marker(deps, client, marker)

    for name in KEY_EVENTS:
        app.event(name)(on_key_marker)
