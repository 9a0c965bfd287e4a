"""The incident's channel: its name, and its creation when a name is taken already."""

from __future__ import annotations

import logging
import re
import secrets
import unicodedata
from datetime import datetime

from sqlalchemy import insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deps import Deps
from bot.exceptions import ChannelNameTaken, ChatError
from bot.incidents.adopt import own_channel
from bot.incidents.models import ArchivedNotice, Incident, Status
from bot.incidents.ports import Channel
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.deliveries import Delivery, claim
from bot.timeline.models import Kind, TimelineEvent

log = logging.getLogger(__name__)

MAX_CHANNEL_NAME = 80
# The timeline's `events.Setup.step` for a person archiving or unarchiving the channel (bot/archive reads the
# latter: a channel a person unarchived after the resolution is not archived again).
ARCHIVED_STEP, UNARCHIVED_STEP = "archived", "unarchived"
# Its step for the outcome of telling someone of a person's archive (`archived_notice`).
NOTICE_STEP = "archived notice"


def slugify(text: str, *, max_length: int) -> str:
    """ASCII, lowercase, dashes: what Slack allows in a channel name."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def channel_name(number: int, title: str, *, suffix: str = "") -> str:
    prefix = f"inc-{number}"
    room = MAX_CHANNEL_NAME - len(prefix) - len(suffix) - 1
    slug = slugify(title, max_length=max(room, 0))
    name = f"{prefix}-{slug}" if slug else prefix
    return f"{name}{suffix}"


async def create_channel(deps: Deps, incident: Incident, *, adopt: bool) -> Channel:
    """A channel named after the incident, with a suffix when the name is taken (a retry may adopt its own)."""
    assert incident.id is not None
    private = incident.private
    suffixes = [""] + [f"-{n}" for n in range(2, 6)] + [f"-{secrets.token_hex(2)}" for _ in range(3)]
    last: ChatError | None = None
    for suffix in suffixes:
        name = channel_name(incident.id, incident.title, suffix=suffix)
        try:
            return await deps.incident_chat.create_channel(name=name, private=private)
        except ChannelNameTaken as exc:
            last = exc
        # Only a retry can meet a channel of its own: the crawl is not paid when a person took the name.
        adopted = await own_channel(deps, incident, name=name) if adopt else None
        if adopted is not None:
            return adopted
    raise ChatError(
        f"every channel name tried for {incident.ref} is taken", step="create channel", code="name_taken"
    ) from last


async def renamed(
    session: AsyncSession,
    *,
    incident_id: int,
    channel_id: str,
    name: str,
    old_name: str,
    actor: str | None,
    at: datetime,
    delivery: Delivery | None,
) -> bool:
    """A person renamed the incident's channel: the name the post-mortem, pages and notices give follows it.

    Written with the claim of `delivery`, so Slack's retry of the event records it once. False when claimed.
    """
    if not await claim(session, delivery):
        return False
    name, old_name = name[:MAX_CHANNEL_NAME], old_name[:MAX_CHANNEL_NAME]
    where = (col(Incident.id) == incident_id, col(Incident.channel_id) == channel_id)
    await session.exec(update(Incident).where(*where).values(channel_name=name))
    text = f"channel renamed #{old_name} → #{name}" if old_name else f"channel renamed #{name}"
    payload = events.Setup(step="renamed", channel_id=channel_id)
    await timeline.add(session, incident_id=incident_id, at=at, actor=actor, text=text, payload=payload)
    await session.commit()
    return True


async def archived(
    session: AsyncSession,
    *,
    incident_id: int,
    channel_id: str,
    archived: bool,
    actor: str | None,
    at: datetime,
    now: datetime,
    delivery: Delivery | None,
) -> bool:
    """A person archived (or unarchived) the incident's channel: on the timeline, key while the incident is open.

    The bot's notices, reminders and page mentions in an archived channel fail from then on; the
    post-mortem says why they are missing. The bot's own archive (bot/archive) records itself. An archive
    while the incident is open plans the notice to the person in charge (`archived_notice`), in this
    transaction: a crash after the ack delays it, never loses it. False when `delivery` was claimed already.
    """
    if not await claim(session, delivery):
        return False
    incident = await session.get(Incident, incident_id)
    is_open = incident is not None and incident.status != Status.RESOLVED
    text = "channel archived" if archived else "channel unarchived"
    if archived and is_open:
        text += " while the incident was open: the bot can no longer post in it"
    payload = events.Setup(step=ARCHIVED_STEP if archived else UNARCHIVED_STEP, channel_id=channel_id)
    key = archived and is_open
    await timeline.add(session, incident_id=incident_id, at=at, actor=actor, text=text, payload=payload, key=key)
    if archived and is_open:  # the person in charge is told after the ack (`archived_notice`): due now
        notice = {"incident_id": incident_id, "channel_id": channel_id, "archived_by": actor, "archived_at": at}
        await session.exec(insert(ArchivedNotice).values(**notice, due_at=now, created_at=now, attempts=0, late=False))
    await session.commit()
    return True


async def unarchived_by(session: AsyncSession, *, incident_id: int, since: datetime | None) -> str | None:
    """Who unarchived the incident's channel at or after `since`, from the timeline: their user ID ("" when
    Slack named nobody); None if nobody did. The archive timer and the archived notice both stop for it.

    The bot never unarchives (Slack does not let a bot token), and its own messages' events are not
    recorded (`listeners/events/timeline._own`): an actor here is a person or another app's user.
    """
    query = select(TimelineEvent).where(
        col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.kind) == Kind.SETUP
    )
    if since is not None:
        query = query.where(col(TimelineEvent.at) >= since)
    for event in (await session.exec(query.order_by(col(TimelineEvent.at), col(TimelineEvent.id)))).all():
        # `read`, not `read_as`: one row that does not fit must not stop every archive sweep or notice.
        payload = events.read(event)
        if isinstance(payload, events.Setup) and payload.step == UNARCHIVED_STEP:
            return event.actor or ""
    return None
