"""Follow-ups' issues in the database: claim before creating, record the link, mark done when closed.

Creating is claimed with a conditional UPDATE (`issue_claimed_at`, a lease) so two clicks, or a
click and `/incident postmortem done`, or two replicas, open one issue. A process that dies
between the tracker's answer and the record leaves the claim to expire; the retry then opens a
second issue (a rare duplicate rather than a follow-up silently never filed).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import NotFound
from bot.incidents.models import ActionItem
from bot.timeline import events
from bot.timeline import service as timeline

LEASE = timedelta(minutes=2)


async def get(session: AsyncSession, *, item_id: int) -> ActionItem:
    item = await session.get(ActionItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"There is no follow-up #{item_id}.")
    return item


async def claim(session: AsyncSession, *, item_id: int, now: datetime) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        update(ActionItem)
        .where(
            col(ActionItem.id) == item_id,
            col(ActionItem.issue_url).is_(None),
            or_(col(ActionItem.issue_claimed_at).is_(None), col(ActionItem.issue_claimed_at) < now - LEASE),
        )
        .values(issue_claimed_at=now)
    )
    await session.commit()
    return bool(result.rowcount)


async def release(session: AsyncSession, *, item_id: int) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(ActionItem)
        .where(col(ActionItem.id) == item_id, col(ActionItem.issue_url).is_(None))
        .values(issue_claimed_at=None)
    )
    await session.commit()


async def record(
    session: AsyncSession,
    *,
    item: ActionItem,
    url: str,
    key: str,
    name: str,
    actor: str,
    now: datetime,
    via: str | None = None,
) -> ActionItem:
    assert item.id is not None
    await session.exec(  # type: ignore[call-overload]
        update(ActionItem)
        .where(col(ActionItem.id) == item.id)
        .values(issue_url=url[:500], issue_key=key[:200], issue_claimed_at=None, issue_checked_at=now)
    )
    timeline.add(
        session,
        incident_id=item.incident_id,
        at=now,
        actor=actor,
        text=f"issue {name} created for the follow-up: {item.text}"[:2000],
        payload=events.ActionItemChanged(item_id=item.id, issue_url=url, issue_key=key, via=via or None),
    )
    await session.commit()
    return await get(session, item_id=item.id)


async def open_items(session: AsyncSession, *, incident_id: int) -> list[ActionItem]:
    result = await session.exec(
        select(ActionItem)
        .where(col(ActionItem.incident_id) == incident_id, col(ActionItem.done).is_(False))
        .order_by(col(ActionItem.id))
    )
    return list(result.all())


async def to_check(session: AsyncSession, *, incident_id: int | None, limit: int = 200) -> list[ActionItem]:
    """Open follow-ups that have an issue, least recently checked first."""
    query = select(ActionItem).where(col(ActionItem.done).is_(False), col(ActionItem.issue_key).is_not(None))
    if incident_id is not None:
        query = query.where(col(ActionItem.incident_id) == incident_id)
    query = query.order_by(col(ActionItem.issue_checked_at).is_not(None), col(ActionItem.issue_checked_at)).limit(limit)
    return list((await session.exec(query)).all())


async def checked(session: AsyncSession, *, item_id: int, closed: bool, now: datetime) -> bool:
    """Store the check; True when this call is the one that marked the follow-up done (once, across replicas)."""
    await session.exec(  # type: ignore[call-overload]
        update(ActionItem).where(col(ActionItem.id) == item_id).values(issue_checked_at=now)
    )
    marked = False
    if closed:
        result = await session.exec(  # type: ignore[call-overload]
            update(ActionItem).where(col(ActionItem.id) == item_id, col(ActionItem.done).is_(False)).values(done=True)
        )
        marked = bool(result.rowcount)
        if marked:
            item = await get(session, item_id=item_id)
            timeline.add(
                session,
                incident_id=item.incident_id,
                at=now,
                actor="issue-tracker",
                text=f"follow-up done (its issue was closed): {item.text}"[:2000],
                payload=events.ActionItemChanged(item_id=item_id, issue_url=item.issue_url, done=True),
            )
    await session.commit()
    return marked
