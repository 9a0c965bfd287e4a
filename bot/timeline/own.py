"""The bot's own messages that a person marked key (the pinned summary, the playbook's progress), kept current.

The bot edits those messages in place, and Slack's `message_changed` for them never reaches a listener:
Bolt drops the bot's own events, and that filter stays on (without it, every message the bot posts in a
storm would cost a lookup). So the flow that edits one says here what it says now, once Slack took the
edit: one UPDATE by (channel, ts), which touches only a message stored on a timeline, and no other read.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlmodel import col

from bot.db import DATABASE_DOWN
from bot.timeline.models import Kind, TimelineEvent
from bot.timeline.shown import DELETED

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)


async def restate(deps: Deps, *, channel_id: str, message_ts: str, text: str) -> bool:
    """The text the bot just gave its own message, on the timeline event it is stored as, if any.

    Never over a deletion recorded meanwhile. A database that fails here costs the newer text until the
    next edit, never the edit itself (Slack has it): True when a stored message was given its text.
    """
    statement = (
        update(TimelineEvent)
        .where(col(TimelineEvent.channel_id) == channel_id, col(TimelineEvent.message_ts) == message_ts)
        .where(col(TimelineEvent.kind) == str(Kind.MESSAGE), col(TimelineEvent.text) != DELETED)
        .values(text=text)
    )
    try:
        async with deps.db.session() as session:
            result = await session.exec(statement)
            await session.commit()
    except DATABASE_DOWN as exc:
        log.warning("the stored text of %s in %s is not updated: %s", message_ts, channel_id, type(exc).__name__)
        return False
    return bool(result.rowcount)
