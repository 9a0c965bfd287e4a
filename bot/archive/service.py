"""Archive timers in the database: plan (upsert), claim (conditional UPDATE), finish."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import exists, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.archive.models import ChannelArchive
from bot.db import upsert_insert
from bot.incidents.models import Incident, Status

LEASE = timedelta(minutes=2)


def _pending() -> list[Any]:
    return [col(ChannelArchive.sent_at).is_(None), col(ChannelArchive.cancelled_at).is_(None)]


async def plan(session: AsyncSession, *, incident_id: int, channel_id: str, due_at: datetime, now: datetime) -> None:
    """One row per incident; a later resolution moves it (unless the channel was archived already)."""
    statement = upsert_insert(session, ChannelArchive).values(
        incident_id=incident_id,
        channel_id=channel_id,
        due_at=due_at,
        created_at=now,
        attempts=0,
        late=False,
        goodbye_posted=False,
    )
    statement = statement.on_conflict_do_update(
        index_elements=["incident_id"],
        set_={"due_at": due_at, "channel_id": channel_id, "cancelled_at": None, "cancel_reason": None, "attempts": 0},
        where=col(ChannelArchive.sent_at).is_(None),
    )
    await session.exec(statement)
    await session.commit()


async def due_ids(session: AsyncSession, *, now: datetime, limit: int = 50) -> list[int]:
    free = or_(col(ChannelArchive.claim_expires_at).is_(None), col(ChannelArchive.claim_expires_at) < now)
    result = await session.exec(
        select(ChannelArchive.id)
        .where(*_pending(), col(ChannelArchive.due_at) <= now, free)
        .order_by(col(ChannelArchive.due_at))
        .limit(limit)
    )
    return [int(i) for i in result.all() if i is not None]


async def next_due(session: AsyncSession) -> datetime | None:
    result = await session.exec(select(func.min(ChannelArchive.due_at)).where(*_pending()))
    return result.one()


async def claim(session: AsyncSession, *, row_id: int, now: datetime) -> tuple[ChannelArchive, str] | None:
    """Exactly one process wins a due row, and only while its incident is resolved."""
    token = secrets.token_hex(8)
    resolved = exists().where(
        col(Incident.id) == col(ChannelArchive.incident_id), col(Incident.status) == Status.RESOLVED
    )
    result = await session.exec(
        update(ChannelArchive)
        .where(
            col(ChannelArchive.id) == row_id,
            *_pending(),
            col(ChannelArchive.due_at) <= now,
            or_(col(ChannelArchive.claim_expires_at).is_(None), col(ChannelArchive.claim_expires_at) < now),
            resolved,
        )
        .values(claim_token=token, claimed_at=now, claim_expires_at=now + LEASE, attempts=ChannelArchive.attempts + 1)
    )
    await session.commit()
    if not result.rowcount:
        await _cancel_if_open(session, row_id=row_id, now=now)
        return None
    row = await session.get(ChannelArchive, row_id, populate_existing=True)
    return (row, token) if row is not None else None


async def _cancel_if_open(session: AsyncSession, *, row_id: int, now: datetime) -> None:
    """A due row whose incident was reopened: never archive it (a new resolution plans it again)."""
    open_incident = exists().where(
        col(Incident.id) == col(ChannelArchive.incident_id), col(Incident.status) != Status.RESOLVED
    )
    await session.exec(
        update(ChannelArchive)
        .where(col(ChannelArchive.id) == row_id, *_pending(), open_incident)
        .values(cancelled_at=now, cancel_reason="the incident is open again")
    )
    await session.commit()


async def finish(
    session: AsyncSession,
    *,
    row_id: int,
    token: str,
    now: datetime,
    error: str | None = None,
    retry_at: datetime | None = None,
) -> None:
    """Done (archived, or nothing left to archive), or failed: back to pending at `retry_at`, or given up."""
    values: dict[str, Any] = {"claim_token": None, "claim_expires_at": None, "error": error[:2000] if error else None}
    if retry_at is not None:
        values["due_at"] = retry_at
    elif error is not None:
        values.update(cancelled_at=now, cancel_reason="gave up: " + error[:180])
    else:
        values["sent_at"] = now
    await session.exec(
        update(ChannelArchive)
        .where(col(ChannelArchive.id) == row_id, col(ChannelArchive.claim_token) == token)
        .values(**values)
    )
    await session.commit()


async def unplanned(session: AsyncSession, *, resolved_since: datetime) -> list[tuple[int, str, datetime]]:
    """Incidents resolved since then, with a channel and no timer: the process died before planning one."""
    planned = exists().where(col(ChannelArchive.incident_id) == col(Incident.id))
    result = await session.exec(
        select(Incident.id, Incident.channel_id, Incident.resolved_at).where(
            col(Incident.status) == Status.RESOLVED,
            col(Incident.channel_id).is_not(None),
            col(Incident.resolved_at) >= resolved_since,
            ~planned,
        )
    )
    return [(int(i), str(c), r) for i, c, r in result.all() if i is not None and c and r is not None]


async def said_goodbye(session: AsyncSession, *, row_id: int, token: str) -> None:
    await session.exec(
        update(ChannelArchive)
        .where(col(ChannelArchive.id) == row_id, col(ChannelArchive.claim_token) == token)
        .values(goodbye_posted=True)
    )
    await session.commit()


async def renew(session: AsyncSession, *, row_id: int, token: str, now: datetime) -> None:
    """The claim's holder is still archiving: its lease runs again from now (a lost claim stays lost)."""
    await session.exec(
        update(ChannelArchive)
        .where(col(ChannelArchive.id) == row_id, col(ChannelArchive.claim_token) == token)
        .values(claim_expires_at=now + LEASE)
    )
    await session.commit()


async def leave(session: AsyncSession, *, row_id: int, token: str, now: datetime, reason: str) -> None:
    """The claim's holder will not archive the channel, now or later: cancelled (a new resolution plans it again)."""
    await session.exec(
        update(ChannelArchive)
        .where(col(ChannelArchive.id) == row_id, col(ChannelArchive.claim_token) == token)
        .values(claim_token=None, claim_expires_at=None, cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()


async def cancel(session: AsyncSession, *, incident_id: int, now: datetime, reason: str) -> None:
    await session.exec(
        update(ChannelArchive)
        .where(col(ChannelArchive.incident_id) == incident_id, *_pending())
        .values(cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()
