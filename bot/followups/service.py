"""Follow-ups' issues in the database: claim before creating, record the link, mark done when closed.

Creating is claimed with a conditional UPDATE (`issue_claimed_at`, a lease) so two clicks, or a
click and `/incident postmortem done`, or two replicas, open one issue. Before the tracker is asked,
`issue_token` is stored and sent with the issue: a process that dies between the tracker's answer and
the record leaves the claim to expire, and the retry, seeing the token, looks the issue up in the
tracker before creating one (see trackers.py for how each vendor is searched).

Checking for closed issues is rate-limited per follow-up: one whose issue was asked about within
`RECHECK_AFTER` is not asked again, and the ask itself is claimed (a conditional UPDATE of
`issue_checked_at`), so views, the schedule and replicas ask once between them.
"""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import NotFound
from bot.followups.models import FollowupCheck
from bot.incidents.models import ActionItem
from bot.timeline import events
from bot.timeline import service as timeline

LEASE = timedelta(minutes=2)
# A follow-up whose issue was asked about this recently is shown as stored: every dashboard view,
# `/incident action` and post-mortem showing would otherwise ask the tracker about every open issue.
RECHECK_AFTER = timedelta(minutes=1)


async def get(session: AsyncSession, *, item_id: int) -> ActionItem:
    item = await session.get(ActionItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"There is no follow-up #{item_id}.")
    return item


async def claim(session: AsyncSession, *, item_id: int, now: datetime) -> bool:
    result = await session.exec(
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


async def pending_token(session: AsyncSession, *, item_id: int, token: str) -> str | None:
    """Store `token` as the pending create's marker unless one is there; returns the one stored before
    (a previous attempt may have created the issue under it), or None when this attempt is the first."""
    before = (await get(session, item_id=item_id)).issue_token
    if before is None:
        await session.exec(
            update(ActionItem)
            .where(col(ActionItem.id) == item_id, col(ActionItem.issue_token).is_(None))
            .values(issue_token=token)
        )
        await session.commit()
        before = (await get(session, item_id=item_id)).issue_token
        return None if before == token else before
    return before


async def release(session: AsyncSession, *, item_id: int) -> None:
    await session.exec(
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
    await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item.id)
        .values(issue_url=url[:500], issue_key=key[:200], issue_claimed_at=None, issue_checked_at=now)
    )
    await timeline.add(
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


def _stale(now: datetime) -> Any:
    checked = col(ActionItem.issue_checked_at)
    return or_(checked.is_(None), checked <= now - RECHECK_AFTER)


async def to_check(
    session: AsyncSession, *, incident_id: int | None, now: datetime, limit: int = 200
) -> list[ActionItem]:
    """Open follow-ups that have an issue not asked about within `RECHECK_AFTER`, least recently checked first."""
    query = select(ActionItem).where(
        col(ActionItem.done).is_(False), col(ActionItem.issue_key).is_not(None), _stale(now)
    )
    if incident_id is not None:
        query = query.where(col(ActionItem.incident_id) == incident_id)
    query = query.order_by(col(ActionItem.issue_checked_at).is_not(None), col(ActionItem.issue_checked_at)).limit(limit)
    return list((await session.exec(query)).all())


async def claim_checks(session: AsyncSession, *, item_ids: list[int], now: datetime) -> set[int]:
    """Take the right to ask the tracker about these follow-ups now (once across views, the schedule
    and replicas), in one UPDATE; returns the ones taken. A check that then fails, or is not made
    because the tracker rate-limited an earlier one, is not retried before `RECHECK_AFTER`."""
    if not item_ids:
        return set()
    result = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id).in_(item_ids), col(ActionItem.done).is_(False), _stale(now))
        .values(issue_checked_at=now)
        .returning(col(ActionItem.id))
        .execution_options(synchronize_session=False)
    )
    taken = {int(row) for row in result.scalars().all()}
    await session.commit()
    return taken


async def checked(session: AsyncSession, *, item_id: int, closed: bool, now: datetime) -> bool:
    """Store the check; True when this call is the one that marked the follow-up done (once, across replicas)."""
    await session.exec(update(ActionItem).where(col(ActionItem.id) == item_id).values(issue_checked_at=now))
    marked = False
    if closed:
        result = await session.exec(
            update(ActionItem).where(col(ActionItem.id) == item_id, col(ActionItem.done).is_(False)).values(done=True)
        )
        marked = bool(result.rowcount)
        if marked:
            item = await get(session, item_id=item_id)
            await timeline.add(
                session,
                incident_id=item.incident_id,
                at=now,
                actor="issue-tracker",
                text=f"follow-up done (its issue was closed): {item.text}"[:2000],
                payload=events.ActionItemChanged(item_id=item_id, issue_url=item.issue_url, done=True),
            )
    await session.commit()
    return marked


# --- the closed-issue check's timer row (models.FollowupCheck) -----------------------------------


def _insert(session: AsyncSession) -> Any:
    bind = session.bind
    name = bind.dialect.name if bind is not None else "sqlite"
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(FollowupCheck)


async def plan_check(session: AsyncSession, *, name: str, due_at: datetime) -> datetime:
    """The sweep's row, made once (on every replica's start: the first insert wins); its due time."""
    await session.exec(_insert(session).values(name=name, due_at=due_at, runs=0).on_conflict_do_nothing())
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
