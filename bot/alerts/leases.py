"""Showing a group in Slack: the lease, what is pending, and what the incident's channel was told.

A sync holds the group through a lease (`sync_token`) taken with a conditional UPDATE, and every write
it makes is conditional on still holding it; a group is pending while `synced_revision < revision`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts.models import AlertGroup, AlertInstance
from bot.alerts.service import get_group


class Claim(StrEnum):
    FREE = "free"  # nobody held the group
    TAKEN_OVER = "taken over"  # a sync died holding it: what it did in Slack may not be recorded


async def claim_sync(
    session: AsyncSession, *, group_id: int, token: str, now: datetime, stale_before: datetime
) -> Claim | None:
    """Take the group's lease; None while another sync holds it."""
    for claim, free in (
        (Claim.FREE, col(AlertGroup.sync_token).is_(None)),
        (Claim.TAKEN_OVER, col(AlertGroup.sync_claimed_at) < stale_before),
    ):
        result = await session.exec(
            update(AlertGroup).where(col(AlertGroup.id) == group_id, free).values(sync_token=token, sync_claimed_at=now)
        )
        await session.commit()
        if result.rowcount:
            return claim
    return None


async def _under_lease(session: AsyncSession, *, group_id: int, token: str, **values: Any) -> None:
    """Change the group only while this sync still holds its lease."""
    await session.exec(
        update(AlertGroup).where(col(AlertGroup.id) == group_id, col(AlertGroup.sync_token) == token).values(**values)
    )
    await session.commit()


async def save_message(session: AsyncSession, *, group_id: int, token: str, channel_id: str, message_ts: str) -> None:
    """Keep the ts at once, so a failure later in the same sync never posts the message twice."""
    await _under_lease(session, group_id=group_id, token=token, channel_id=channel_id, message_ts=message_ts)


async def finish_sync(session: AsyncSession, *, group_id: int, token: str, revision: int) -> bool:
    """Record what Slack now shows and release the lease; True when nothing newer is waiting."""
    await _under_lease(
        session,
        group_id=group_id,
        token=token,
        synced_revision=revision,
        sync_token=None,
        sync_claimed_at=None,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
    )
    group = await get_group(session, group_id=group_id)
    return not group.pending


async def fail_sync(session: AsyncSession, *, group_id: int, token: str, error: str, next_attempt_at: datetime) -> None:
    await _under_lease(
        session,
        group_id=group_id,
        token=token,
        sync_token=None,
        sync_claimed_at=None,
        attempts=AlertGroup.attempts + 1,
        next_attempt_at=next_attempt_at,
        last_error=error[:500],
    )


async def pending_ids(
    session: AsyncSession, *, now: datetime, stale_before: datetime, limit: int = 50, due_only: bool = True
) -> list[int]:
    query = select(AlertGroup.id).where(
        col(AlertGroup.synced_revision) < col(AlertGroup.revision),
        or_(col(AlertGroup.sync_token).is_(None), col(AlertGroup.sync_claimed_at) < stale_before),
    )
    if due_only:
        query = query.where(or_(col(AlertGroup.next_attempt_at).is_(None), col(AlertGroup.next_attempt_at) <= now))
    result = await session.exec(query.order_by(col(AlertGroup.id)).limit(limit))
    return [int(i) for i in result.all() if i is not None]


async def pending_count(session: AsyncSession) -> int:
    result = await session.exec(
        select(func.count()).select_from(AlertGroup).where(col(AlertGroup.synced_revision) < col(AlertGroup.revision))
    )
    return int(result.one())


async def mark_noticed(session: AsyncSession, *, group_id: int, fingerprints: Sequence[str]) -> None:
    if not fingerprints:
        return
    await session.exec(
        update(AlertInstance)
        .where(col(AlertInstance.group_id) == group_id, col(AlertInstance.fingerprint).in_(list(fingerprints)))
        .values(noticed=True)
    )
    await session.commit()


async def clear_resolve_offer(session: AsyncSession, *, group_id: int, resolved_at: datetime | None) -> None:
    """The offer about the resolution at `resolved_at` is posted. If the alert fired and cleared again
    while it was on its way, that newer resolution's offer stays pending for the next sync."""
    same = col(AlertGroup.resolved_at).is_not_distinct_from(resolved_at)
    await session.exec(
        update(AlertGroup).where(col(AlertGroup.id) == group_id, same).values(resolve_offer_pending=False)
    )
    await session.commit()
