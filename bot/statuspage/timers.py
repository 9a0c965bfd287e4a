"""Claiming the status page's timer rows (reminders, Statuspage outbox): a conditional UPDATE each.

The same lease model as escalation's pages: a row is pending while `sent_at` and `cancelled_at`
are NULL; whoever claims it first (a token and a lease) sends it; a process that dies holding it
loses it when the lease ends, and the next sweep (here or on another replica) takes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.statuspage.models import PublicReminder, StatuspageSync

LEASE = timedelta(minutes=2)
R = TypeVar("R", PublicReminder, StatuspageSync)


def new_token() -> str:
    return uuid.uuid4().hex


def pending(model: type[R]) -> list[Any]:
    return [col(model.sent_at).is_(None), col(model.cancelled_at).is_(None)]


def held(model: type[R], row_id: int, token: str) -> list[Any]:
    return [col(model.id) == row_id, col(model.claim_token) == token, col(model.sent_at).is_(None)]


def claimable(model: type[R], now: datetime) -> list[Any]:
    expires = col(model.claim_expires_at)
    return [*pending(model), col(model.due_at) <= now, or_(expires.is_(None), expires <= now)]


async def claim(
    session: AsyncSession, *, model: type[R], row_id: int, token: str, now: datetime, lease: timedelta = LEASE
) -> R | None:
    """Take the row; None when another process has it, or it was sent, cancelled or is not due."""
    result = await session.exec(
        update(model)
        .where(col(model.id) == row_id, *claimable(model, now))
        .values(claim_token=token, claimed_at=now, claim_expires_at=now + lease, attempts=col(model.attempts) + 1)
        .returning(model)
        .execution_options(populate_existing=True)
    )
    row = result.scalars().one_or_none()
    await session.commit()
    return row


async def release(
    session: AsyncSession, *, model: type[R], row_id: int, token: str, retry_at: datetime, error: str, **values: Any
) -> bool:
    """Give the row back for another try at `retry_at` (the lease doubles as the back-off)."""
    result = await session.exec(
        update(model)
        .where(*held(model, row_id, token), col(model.cancelled_at).is_(None))
        .values(claim_expires_at=retry_at, error=error[:2000], **values)
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def forget_error(session: AsyncSession, *, model: type[R], row_id: int, token: str) -> None:
    """Clear the last attempt's error before this one goes out: a sender that dies during it leaves NULL,
    an unknown outcome, not the earlier attempt's answer. Commits."""
    await session.exec(update(model).where(*held(model, row_id, token)).values(error=None))
    await session.commit()


async def mark_sent(session: AsyncSession, *, model: type[R], row_id: int, token: str, now: datetime) -> R | None:
    """Sent, if the claim is still ours; lateness measured from the due time. Commits."""
    row = await session.get(model, row_id, populate_existing=True)
    if row is None or row.claim_token != token or row.sent_at is not None:
        return None
    row.sent_at = now
    row.late_seconds = max((now - utc(row.due_at)).total_seconds(), 0.0)
    row.late = row.late_seconds > 60
    row.error = None
    session.add(row)
    await session.commit()
    return row


async def cancel(session: AsyncSession, *, model: type[R], row_id: int, token: str, now: datetime, reason: str) -> bool:
    cancelled = await cancel_held(session, model=model, row_id=row_id, token=token, now=now, reason=reason)
    await session.commit()
    return cancelled


async def cancel_held(
    session: AsyncSession, *, model: type[R], row_id: int, token: str, now: datetime, reason: str
) -> bool:
    """`cancel` in the caller's transaction: whoever holds the claim cancels it once (the others get False),
    so what commits with it is done once too."""
    result = await session.exec(
        update(model).where(*held(model, row_id, token)).values(cancelled_at=now, cancel_reason=reason[:200])
    )
    return bool(result.rowcount == 1)


async def due(session: AsyncSession, *, model: type[R], now: datetime, limit: int = 100) -> list[tuple[int, int]]:
    """(row, incident) due and free to claim, oldest first."""
    query = (
        select(model.id, model.incident_id)
        .where(*claimable(model, now))
        .order_by(col(model.due_at), col(model.id))
        .limit(limit)
    )
    return [(row_id, incident) for row_id, incident in (await session.exec(query)).all() if row_id is not None]


async def next_free(session: AsyncSession, *, model: type[R]) -> datetime | None:
    """When the next pending row can be claimed (its due time, or its claim's expiry)."""
    free_at = func.coalesce(col(model.claim_expires_at), col(model.due_at))
    value = (await session.exec(select(func.min(free_at)).where(*pending(model)))).one()
    return None if value is None else utc(value)
