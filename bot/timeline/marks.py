"""Who marks a message key: one row per person's 📌 (and one for the pin), in the transaction of the mark.

Slack's events say only what was added or removed. With one flag per message, a removal either
unmarked a message another person still marks, or had to ask Slack what remains (an answer that may
be late, missing, or already stale when written). Each marker's own row makes "at least one 📌 or the
pin remains" a count in the database, decided in the transaction that claims the event.
"""

from __future__ import annotations

from sqlalchemy import delete, exists, insert
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.timeline.models import KeyMark, TimelineEvent

PIN = "pin"  # a message has one pin, whoever put it and whoever takes it off


def reaction(name: str, user: str | None) -> str:
    """A person's 📌 (or 📍): each person's reaction is theirs to take off."""
    return f"{name}:{user or '?'}"


async def add(session: AsyncSession, *, channel_id: str, message_ts: str, marker: str) -> None:
    """Record a marker in the caller's transaction (once: a marker put back replaces its row)."""
    await remove(session, channel_id=channel_id, message_ts=message_ts, marker=marker)
    values = {"channel_id": channel_id, "message_ts": message_ts, "marker": marker}
    await session.exec(insert(KeyMark), params=values)


async def remove(session: AsyncSession, *, channel_id: str, message_ts: str, marker: str) -> None:
    statement = delete(KeyMark).where(
        col(KeyMark.channel_id) == channel_id, col(KeyMark.message_ts) == message_ts, col(KeyMark.marker) == marker
    )
    await session.exec(statement)


async def forget(session: AsyncSession, *, channel_id: str, message_ts: str) -> None:
    """A deleted message's markers, in its deletion's transaction: Slack takes them with it, and a removal
    delivered after the deletion must not find another marker's row and mark the deleted message again.

    The caller has locked the message's row first (its deletion's UPDATE), as a mark and a removal lock
    it, so neither waits on the other crosswise.
    """
    where = col(KeyMark.channel_id) == channel_id, col(KeyMark.message_ts) == message_ts
    await session.exec(delete(KeyMark).where(*where))


async def remains(session: AsyncSession, *, channel_id: str, message_ts: str, marker: str) -> bool:
    """Take one marker off in the caller's transaction; True while another remains.

    The message's row is locked first (PostgreSQL), as a mark locks it by its UPDATE before adding its
    row: a 📌 put on while this removal runs is counted, or marks the message after it.
    """
    await _lock(session, channel_id=channel_id, message_ts=message_ts)
    await remove(session, channel_id=channel_id, message_ts=message_ts, marker=marker)
    left = exists().where(col(KeyMark.channel_id) == channel_id, col(KeyMark.message_ts) == message_ts)
    return bool((await session.exec(select(left))).one())


async def _lock(session: AsyncSession, *, channel_id: str, message_ts: str) -> None:
    lock = select(TimelineEvent.id).where(
        col(TimelineEvent.channel_id) == channel_id, col(TimelineEvent.message_ts) == message_ts
    )
    await session.exec(lock.with_for_update())
