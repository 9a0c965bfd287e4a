"""Writing and reading an incident's timeline."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import delete, func, insert, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.timeline import marks
from bot.timeline.deliveries import Delivery, claim, commit_once, insert_once, insert_or_roll_back
from bot.timeline.events import MessagePosted, Payload
from bot.timeline.models import Kind, TimelineEvent

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

_EVENTS = TimelineEvent.metadata.tables["timeline_events"]
_INSERT_EVENT = insert(_EVENTS)


async def add(
    session: AsyncSession,
    *,
    incident_id: int,
    at: datetime,
    payload: Payload,
    actor: str | None = None,
    text: str = "",
    key: bool = False,
) -> None:
    """Write an event in the caller's transaction, so the event and the state change commit together.

    The kind is the payload's (`payload=events.SeverityChanged(...)`), so a writer cannot pair a kind with
    another kind's data, and the post-mortem reads back the same type. A Core INSERT: nearly every
    state change writes one, and the ORM's object and flush cost twice the statement itself
    (benchmarks/statement_cost.py). Every key is always given, so the statement compiles once.
    """
    await session.exec(_INSERT_EVENT, params=_row(incident_id, at, payload, actor=actor, text=text, key=key))


def _row(
    incident_id: int,
    at: datetime,
    payload: Payload,
    *,
    actor: str | None,
    text: str,
    key: bool,
    channel_id: str | None = None,
    message_ts: str | None = None,
    permalink: str | None = None,
) -> dict[str, Any]:
    return {
        "incident_id": incident_id,
        "kind": str(payload.KIND),
        "at": at,
        "actor": actor,
        "text": text,
        "key": key,
        "data": payload.to_data(),
        "channel_id": channel_id,
        "message_ts": message_ts,
        "permalink": permalink,
    }


def _message_row(
    incident_id: int, at: datetime, actor: str | None, text: str, where: tuple[str, str, str | None], *, key: bool
) -> dict[str, Any]:
    """A channel message's row; `where` is its channel, ts and permalink."""
    channel_id, message_ts, permalink = where
    return _row(
        incident_id,
        at,
        MessagePosted(),
        actor=actor,
        text=text,
        key=key,
        channel_id=channel_id,
        message_ts=message_ts,
        permalink=permalink,
    )


async def record(
    session: AsyncSession,
    *,
    incident_id: int,
    at: datetime,
    payload: Payload,
    actor: str | None = None,
    text: str = "",
    key: bool = False,
) -> None:
    """Add and commit one event on its own."""
    await add(session, incident_id=incident_id, at=at, payload=payload, actor=actor, text=text, key=key)
    await session.commit()


async def record_now(
    deps: Deps, *, incident_id: int, payload: Payload, actor: str | None = None, text: str = "", key: bool = False
) -> None:
    """Record one event, stamped now, in a session of its own: for flows with no transaction open."""
    async with deps.db.session() as session:
        await record(
            session, incident_id=incident_id, at=deps.clock.now(), payload=payload, actor=actor, text=text, key=key
        )


async def record_pending(
    deps: Deps, *, incident_id: int, payload: Payload, actor: str | None = None, text: str = ""
) -> int:
    """Record an event stamped now that a later `complete` rewrites; returns its id.

    For work outside the database (a file shared in Slack): written before it, so a run that fails or
    dies after Slack acted leaves a trace that says to look there before doing it again.
    """
    row = _row(incident_id, deps.clock.now(), payload, actor=actor, text=text, key=False)
    async with deps.db.session() as session:
        event_id = (await session.exec(insert(_EVENTS).returning(_EVENTS.c.id), params=row)).scalar_one()
        await session.commit()
    return int(event_id)


async def complete(deps: Deps, *, event_id: int, payload: Payload, text: str) -> None:
    """Rewrite a pending event (`record_pending`) with what the work turned out to be."""
    async with deps.db.session() as session:
        await session.exec(
            update(_EVENTS)
            .where(_EVENTS.c.id == event_id, _EVENTS.c.kind == str(payload.KIND))
            .values(data=payload.to_data(), text=text)
        )
        await session.commit()


async def events(
    session: AsyncSession,
    *,
    incident_id: int,
    kinds: Sequence[str] | None = None,
    key_only: bool = False,
    limit: int | None = None,
    newest_first: bool = False,
) -> list[TimelineEvent]:
    query = select(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
    if kinds:
        query = query.where(col(TimelineEvent.kind).in_([str(k) for k in kinds]))
    if key_only:
        query = query.where(col(TimelineEvent.key).is_(True))
    at, event_id = col(TimelineEvent.at), col(TimelineEvent.id)
    query = query.order_by(*((at.desc(), event_id.desc()) if newest_first else (at, event_id)))
    if limit is not None:
        query = query.limit(limit)
    return list((await session.exec(query)).all())


async def count(session: AsyncSession, *, incident_id: int) -> int:
    query = select(func.count()).select_from(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
    return int((await session.exec(query)).one())


async def store_message(
    session: AsyncSession,
    *,
    incident_id: int,
    channel_id: str,
    message_ts: str,
    at: datetime,
    actor: str | None,
    text: str,
    permalink: str | None = None,
    delivery: Delivery | None = None,
) -> bool:
    """Keep a channel message; False when it is stored already (Slack redelivers) or `delivery` was claimed.

    A message a 📌 stored before it, without its text (Slack could not be read then), is given the text
    and author its own event carries: True then too.
    """
    if not await claim(session, delivery):
        return False
    row = _message_row(incident_id, at, actor, text, (channel_id, message_ts, permalink), key=False)
    if await insert_once(session, _EVENTS, row):
        return True
    return bool(text) and await _fill_blank(session, channel_id, message_ts, text=text, actor=actor)


async def _fill_blank(session: AsyncSession, channel_id: str, message_ts: str, **values: Any) -> bool:
    """Text (and author) for a stored message that has none: never over a text an edit or deletion wrote."""
    statement = _where_message(update(TimelineEvent), channel_id, message_ts).where(col(TimelineEvent.text) == "")
    result = await session.exec(statement.values(**values))
    await session.commit()
    return bool(result.rowcount)


async def _update_message(session: AsyncSession, *, channel_id: str, message_ts: str, **values: Any) -> bool:
    result = await session.exec(_where_message(update(TimelineEvent), channel_id, message_ts).values(**values))
    await session.commit()
    return bool(result.rowcount)


async def edit_message(
    session: AsyncSession,
    *,
    channel_id: str,
    message_ts: str,
    text: str,
    delivery: Delivery | None = None,
    deleted: bool = False,
    changed_at: str | None = None,
) -> bool:
    """False when `delivery` was claimed already, the message is not stored, or a change made after this one
    (`changed_at`, Slack's ts of it) was applied: Slack's retry of an edit must not undo a newer edit, nor a
    deletion. A deleted message keeps its place, not its key mark (Slack takes its 📌s and pin with it) or its link.

    One UPDATE, its order guard in its WHERE: most edits in a channel are of messages never stored (the
    bot's own, older ones), and a read first cost them a locking SELECT for nothing. On PostgreSQL a
    concurrent edit of the same row waits for the first one's commit, and the guard is then checked
    again against the row it wrote, so the newer change wins in either order.
    """
    if not await claim(session, delivery):
        return False
    values: dict[str, Any] = {"text": text} | ({"key": False, "permalink": None} if deleted else {})
    statement = _where_message(update(TimelineEvent), channel_id, message_ts)
    if changed_at is not None:
        changed, applied = slack_order(changed_at), col(TimelineEvent.data)["changed"].as_string()
        statement = statement.where(or_(applied.is_(None), applied < changed))
        values["data"] = MessagePosted(changed=changed).to_data()
    result = await session.exec(statement.values(**values))
    if deleted and result.rowcount:
        await marks.forget(session, channel_id=channel_id, message_ts=message_ts)  # its row locked by the UPDATE
    await session.commit()
    return bool(result.rowcount)


def slack_order(value: str | None) -> str:
    """A Slack ts (`1790000010.000100`) as a string that sorts in time order, for a comparison in SQL;
    Slack's own are already so shaped. None, or one not shaped so, is before any."""
    seconds, _, micros = str(value or "").partition(".")
    try:
        return f"{int(seconds):010d}.{int(micros or 0):06d}"
    except ValueError:
        return f"{0:010d}.{0:06d}"


async def mark_key(
    session: AsyncSession,
    *,
    incident_id: int,
    channel_id: str,
    message_ts: str,
    at: datetime,
    actor: str | None,
    text: str,
    permalink: str | None,
    delivery: Delivery | None,
    marker: str = marks.PIN,
) -> bool | None:
    """Mark a message key in the transaction that claims `delivery`, so the mark and the claim commit together.

    A message not on the timeline (posted before the bot stored anything, or by the bot) is stored
    now, as key, with what the event says of it. True then (its text or link may be added after);
    False when a stored message was marked; None when `delivery` was claimed already. `marker` is kept too.
    """
    row = _message_row(incident_id, at, actor, text, (channel_id, message_ts, permalink), key=True)
    for _ in range(2):  # the second pass when its message event stored it a moment ago
        if not await claim(session, delivery):
            return None
        marked = await session.exec(_where_message(update(TimelineEvent), channel_id, message_ts).values(key=True))
        inserted = not marked.rowcount and await insert_or_roll_back(session, _EVENTS, row)
        if marked.rowcount or inserted:
            await marks.add(session, channel_id=channel_id, message_ts=message_ts, marker=marker)  # row locked
            if await commit_once(session):
                return inserted
    return None


def _where_message(statement: Any, channel_id: str, message_ts: str) -> Any:
    return statement.where(col(TimelineEvent.channel_id) == channel_id, col(TimelineEvent.message_ts) == message_ts)


async def unmark(
    session: AsyncSession,
    *,
    channel_id: str,
    message_ts: str,
    marker: str,
    remains: bool,
    delivery: Delivery | None,
    kept_for_mark: bool = False,
) -> bool | None:
    """Take a marker off with the claim of `delivery`: still key while another recorded marker remains, or
    Slack said one does (`remains`: for marks older than their records). False when the message is not
    on any timeline; None when `delivery` was claimed already (a late retry must not undo a later pin).

    `kept_for_mark`: the message is on the timeline only because it was marked (the bot's own: its
    notices are events of their own); no longer key, it leaves the timeline rather than stay there twice.
    """
    if not await claim(session, delivery):
        return None
    key = await marks.remains(session, channel_id=channel_id, message_ts=message_ts, marker=marker) or remains
    if key or not kept_for_mark:
        return await _update_message(session, channel_id=channel_id, message_ts=message_ts, key=key)
    statement = _where_message(delete(TimelineEvent), channel_id, message_ts)
    result = await session.exec(statement.where(col(TimelineEvent.kind) == str(Kind.MESSAGE)))
    await session.commit()
    return bool(result.rowcount)


async def stored_message(session: AsyncSession, *, channel_id: str, message_ts: str) -> TimelineEvent | None:
    """The timeline event a Slack message is stored as, if any."""
    query = _where_message(select(TimelineEvent), channel_id, message_ts)
    return cast("TimelineEvent | None", (await session.exec(query)).first())


async def fill_message(
    session: AsyncSession,
    *,
    channel_id: str,
    message_ts: str,
    text: str | None,
    actor: str | None,
    permalink: str | None,
) -> bool:
    """What Slack says, after the ack, of a message stored as key before it (`mark_key`): text, author, link.

    Only what is still blank: an edit or a deletion delivered while Slack was being read is newer.
    """
    filled = False
    if text is not None:
        said = {"text": text} | ({"actor": actor} if actor is not None else {})
        filled = await _fill_blank(session, channel_id, message_ts, **said)
    if permalink is not None:
        statement = _where_message(update(TimelineEvent), channel_id, message_ts)
        statement = statement.where(col(TimelineEvent.permalink).is_(None)).values(permalink=permalink)
        filled = bool((await session.exec(statement)).rowcount) or filled
        await session.commit()
    return filled


async def set_permalink(session: AsyncSession, *, channel_id: str, message_ts: str, permalink: str) -> bool:
    """A stored message's link, added after Slack's ack (the message itself is stored before it)."""
    return await _update_message(session, channel_id=channel_id, message_ts=message_ts, permalink=permalink)
