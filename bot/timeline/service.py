"""Writing and reading an incident's timeline."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from pydantic import ValidationError
from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import SQLModel, col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.timeline.events import MessagePosted, Payload, parse, payload_type
from bot.timeline.models import Kind, ProcessedEvent, ProcessedRequest, TimelineEvent

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)


@overload
def add(
    session: AsyncSession,
    *,
    incident_id: int,
    at: datetime,
    payload: Payload,
    actor: str | None = None,
    text: str = "",
    key: bool = False,
    channel_id: str | None = None,
    message_ts: str | None = None,
    permalink: str | None = None,
) -> TimelineEvent: ...


@overload
def add(
    session: AsyncSession,
    *,
    incident_id: int,
    at: datetime,
    kind: str,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
    text: str = "",
    key: bool = False,
    channel_id: str | None = None,
    message_ts: str | None = None,
    permalink: str | None = None,
) -> TimelineEvent: ...


def add(
    session: AsyncSession,
    *,
    incident_id: int,
    at: datetime,
    payload: Payload | None = None,
    kind: str | None = None,
    data: dict[str, Any] | None = None,
    actor: str | None = None,
    text: str = "",
    key: bool = False,
    channel_id: str | None = None,
    message_ts: str | None = None,
    permalink: str | None = None,
) -> TimelineEvent:
    """Stage an event in the caller's transaction, so the event and the state change commit together.

    The kind is the payload's (`payload=events.SeverityChanged(...)`). `kind=` with a `data` dict is the
    untyped form the escalation writers still use; that dict is checked against the kind's type.
    """
    kind, data = _kind_and_data(payload, kind, data)
    event = TimelineEvent(
        incident_id=incident_id,
        kind=kind,
        at=at,
        actor=actor,
        text=text,
        key=key,
        data=data,
        channel_id=channel_id,
        message_ts=message_ts,
        permalink=permalink,
    )
    session.add(event)
    return event


def _kind_and_data(
    payload: Payload | None, kind: str | None, data: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    if payload is not None:
        if kind is not None or data is not None:
            raise TypeError("give a payload, or a kind with its data; not both")
        return str(payload.KIND), payload.to_data()
    if kind is None:
        raise TypeError("a timeline event needs a payload (or a kind)")
    try:
        parse(kind, data)  # a kind without a payload type is refused (UnknownKind)
    except ValidationError as exc:
        # Kept all the same: losing a page's record over a field's type would be worse than the odd row,
        # which readers show by its text. tests/timeline checks the escalation dicts fit their types.
        log.error("timeline %s data does not fit %s: %s", kind, payload_type(kind).__name__, exc)
    return str(kind), dict(data or {})


async def record(
    session: AsyncSession,
    *,
    incident_id: int,
    at: datetime,
    payload: Payload,
    actor: str | None = None,
    text: str = "",
    key: bool = False,
) -> TimelineEvent:
    """Add and commit one event on its own."""
    event = add(session, incident_id=incident_id, at=at, payload=payload, actor=actor, text=text, key=key)
    await session.commit()
    return event


async def record_now(
    deps: Deps, *, incident_id: int, payload: Payload, actor: str | None = None, text: str = "", key: bool = False
) -> TimelineEvent:
    """Record one event, stamped now, in a session of its own: for flows with no transaction open."""
    async with deps.db.session() as session:
        return await record(
            session, incident_id=incident_id, at=deps.clock.now(), payload=payload, actor=actor, text=text, key=key
        )


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
    order = (
        (col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
        if newest_first
        else (
            col(TimelineEvent.at),
            col(TimelineEvent.id),
        )
    )
    query = query.order_by(*order)
    if limit is not None:
        query = query.limit(limit)
    return list((await session.exec(query)).all())


async def count(session: AsyncSession, *, incident_id: int) -> int:
    result = await session.exec(
        select(func.count()).select_from(TimelineEvent).where(TimelineEvent.incident_id == incident_id)
    )
    return int(result.one())


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
) -> TimelineEvent | None:
    """Keep a channel message; None when it is stored already (Slack redelivers)."""
    event = TimelineEvent(
        incident_id=incident_id,
        kind=Kind.MESSAGE,
        at=at,
        actor=actor,
        text=text,
        channel_id=channel_id,
        message_ts=message_ts,
        permalink=permalink,
        data=MessagePosted().to_data(),
    )
    return event if await _insert_once(session, event) else None


async def _update_message(session: AsyncSession, *, channel_id: str, message_ts: str, **values: Any) -> bool:
    result = await session.exec(
        update(TimelineEvent)
        .where(col(TimelineEvent.channel_id) == channel_id, col(TimelineEvent.message_ts) == message_ts)
        .values(**values)
    )
    await session.commit()
    return bool(result.rowcount)


async def edit_message(session: AsyncSession, *, channel_id: str, message_ts: str, text: str) -> bool:
    return await _update_message(session, channel_id=channel_id, message_ts=message_ts, text=text)


async def set_key(session: AsyncSession, *, channel_id: str, message_ts: str, key: bool) -> bool:
    """Mark or unmark the event for a message; False when the message is not on any timeline."""
    return await _update_message(session, channel_id=channel_id, message_ts=message_ts, key=key)


async def _insert_once(session: AsyncSession, row: SQLModel) -> bool:
    """True for the first insert of this key; a race between replicas is settled by the primary key."""
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def first_delivery(session: AsyncSession, *, event_id: str, at: datetime) -> bool:
    """True the first time a Slack `event_id` is seen."""
    return await _insert_once(session, ProcessedEvent(event_id=event_id, received_at=at))


async def first_request(session: AsyncSession, *, signature: str, at: datetime) -> bool:
    """True the first time a request signature is seen."""
    return await _insert_once(session, ProcessedRequest(signature=signature, received_at=at))


async def prune_processed(session: AsyncSession, *, events_before: datetime, requests_before: datetime) -> None:
    await session.exec(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < events_before))
    await session.exec(delete(ProcessedRequest).where(col(ProcessedRequest.received_at) < requests_before))
    await session.commit()
