"""The closed-issue check's timer row (models.FollowupCheck): planned once, claimed by one process per run."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import upsert_insert
from bot.followups.models import FollowupCheck


def insert_check(session: AsyncSession) -> Any:
    """An INSERT into `followup_checks` in the session's dialect (both have ON CONFLICT)."""
    return upsert_insert(session, FollowupCheck)


async def plan_check(session: AsyncSession, *, name: str, due_at: datetime) -> datetime:
    """The sweep's row, made once (on every replica's start: the first insert wins); its due time."""
    await session.exec(insert_check(session).values(name=name, due_at=due_at, runs=0).on_conflict_do_nothing())
    await session.commit()
    row = (await session.exec(select(FollowupCheck).where(col(FollowupCheck.name) == name))).one()
    return row.due_at


async def claim_sweep(session: AsyncSession, *, name: str, now: datetime, lease: timedelta) -> str | None:
    """A token when this process won the due sweep (one across replicas); None when it is not due or held."""
    token = secrets.token_hex(8)
    expires = col(FollowupCheck.claim_expires_at)
    result = await session.exec(
        update(FollowupCheck)
        .where(
            col(FollowupCheck.name) == name,
            col(FollowupCheck.due_at) <= now,
            or_(expires.is_(None), expires <= now),
        )
        .values(claim_token=token, claim_expires_at=now + lease, runs=col(FollowupCheck.runs) + 1)
    )
    await session.commit()
    return token if result.rowcount else None


async def finish_sweep(
    session: AsyncSession, *, name: str, token: str, now: datetime, next_due: datetime, error: str | None
) -> None:
    """Next time is planned from now; a claim that expired and was taken by another process is left alone."""
    await session.exec(
        update(FollowupCheck)
        .where(col(FollowupCheck.name) == name, col(FollowupCheck.claim_token) == token)
        .values(
            claim_token=None,
            claim_expires_at=None,
            due_at=next_due,
            last_run_at=now,
            error=error[:2000] if error else None,
        )
    )
    await session.commit()


async def next_sweep(session: AsyncSession, *, name: str) -> datetime | None:
    """When the sweep can next be claimed: its due time, or its claim's expiry when that is later."""
    row = (await session.exec(select(FollowupCheck).where(col(FollowupCheck.name) == name))).first()
    if row is None:
        return None
    return max(row.due_at, row.claim_expires_at) if row.claim_expires_at else row.due_at


async def sweep_state(session: AsyncSession, *, name: str) -> tuple[datetime, str | None] | None:
    """When the sweep can next be claimed, and how its last run failed (None: it did not)."""
    row = (await session.exec(select(FollowupCheck).where(col(FollowupCheck.name) == name))).first()
    if row is None:
        return None
    return (max(row.due_at, row.claim_expires_at) if row.claim_expires_at else row.due_at), row.error
