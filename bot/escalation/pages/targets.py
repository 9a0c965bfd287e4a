"""A page's recipients in the database: one row per person DMed, per bot.yml target that resolved
to nobody, for the channel mention and for PagerDuty (`escalation_page_targets`).

When a DM fails for a transient reason (Slack 5xx, unreachable, rate limited) the page is released
for a retry at a back-off and the next attempt only DMs the recipients still pending; everyone
already reached is left alone. Rows are written by the holder of the page's claim (`leases`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.escalation.leases import DEFAULT_LEASE
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState

# A page reached someone for real when one of these was sent (not just mentioned in the channel).
DELIVERED_KINDS = (TargetKind.USER, TargetKind.PAGERDUTY)


def reached_someone() -> Any:
    """SQL: the page DMed someone (or PagerDuty took it): its delivery has started for real."""
    return (
        select(PageTarget.id)
        .where(
            col(PageTarget.page_id) == Page.id,
            col(PageTarget.state) == TargetState.SENT,
            col(PageTarget.kind).in_([str(kind) for kind in DELIVERED_KINDS]),
        )
        .exists()
    )


@dataclass(frozen=True)
class NewTarget:
    kind: TargetKind
    recipient: str
    state: TargetState = TargetState.PENDING
    error: str | None = None


async def targets(session: AsyncSession, *, page_id: int) -> list[PageTarget]:
    query = (
        select(PageTarget)
        .where(PageTarget.page_id == page_id)
        .order_by(col(PageTarget.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())


async def dmed(session: AsyncSession, *, page_id: int) -> list[str]:
    """Whom the page's DM reached: known as soon as each is sent, before the page's record (`sent_to`)."""
    query = (
        select(PageTarget.recipient)
        .where(
            PageTarget.page_id == page_id,
            col(PageTarget.kind) == TargetKind.USER,
            col(PageTarget.state) == TargetState.SENT,
        )
        .order_by(col(PageTarget.id))
    )
    return list((await session.exec(query)).all())


async def targets_by_page(session: AsyncSession, *, incident_id: int) -> dict[int, list[PageTarget]]:
    """The recipients of every page of an incident (pages without any are left out), in one query."""
    query = (
        select(PageTarget)
        .join(Page, col(Page.id) == col(PageTarget.page_id))
        .where(Page.incident_id == incident_id)
        .order_by(col(PageTarget.id))
        .execution_options(populate_existing=True)
    )
    by_page: dict[int, list[PageTarget]] = {}
    for row in (await session.exec(query)).all():
        by_page.setdefault(row.page_id, []).append(row)
    return by_page


async def paged_before(session: AsyncSession, *, incident_id: int, level: int) -> dict[str, int]:
    """Who a page of an earlier level of this incident DMed already, with the first such level."""
    query = (
        select(PageTarget.recipient, Page.level)
        .join(Page, col(Page.id) == col(PageTarget.page_id))
        .where(
            Page.incident_id == incident_id,
            col(Page.level) < level,
            col(PageTarget.kind) == TargetKind.USER,
            col(PageTarget.state) == TargetState.SENT,
        )
        .order_by(col(Page.level))
    )
    found: dict[str, int] = {}
    for user, earlier in (await session.exec(query)).all():
        found.setdefault(user, earlier)
    return found


async def add_targets(
    session: AsyncSession,
    *,
    page_id: int,
    new: list[NewTarget],
    now: datetime,
    existing: list[PageTarget] | None = None,
    token: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> list[PageTarget]:
    """Record recipients (in order) unless they are there already; returns every row of the page.

    With `token` (the page's claim), new pending people are inserted already claimed for their DM:
    whoever inserts a row is the only one who can have it.
    """
    rows = list(existing) if existing is not None else await targets(session, page_id=page_id)
    added = new_target_rows(page_id, new, now=now, token=token, lease=lease, known=rows)
    if not added:
        return rows
    session.add_all(added)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # a sender whose lease ran out wrote them first; theirs stand
        return await targets(session, page_id=page_id)
    return sorted([*rows, *added], key=lambda row: row.id or 0)


def new_target_rows(
    page_id: int,
    new: list[NewTarget],
    *,
    now: datetime,
    token: str | None,
    lease: timedelta,
    known: Sequence[PageTarget] = (),
) -> list[PageTarget]:
    """Rows for recipients not among `known` (nor twice in `new`); pending people claimed with `token`."""
    seen = {(row.kind, row.recipient) for row in known}
    added = []
    for item in new:
        key = (str(item.kind), item.recipient[:200])
        if key in seen:
            continue
        seen.add(key)
        claimed = token is not None and item.kind == TargetKind.USER and item.state == TargetState.PENDING
        added.append(
            PageTarget(
                page_id=page_id,
                kind=item.kind,
                recipient=item.recipient[:200],
                state=item.state,
                error=item.error[:500] if item.error else None,
                created_at=now,
                done_at=None if item.state == TargetState.PENDING else now,
                claim_token=token if claimed else None,
                claim_expires_at=now + lease if claimed else None,
                attempts=1 if claimed else 0,
            )
        )
    return added


async def mark_target(
    session: AsyncSession,
    *,
    target_id: int,
    state: TargetState,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Record the outcome for a recipient still pending (a bot.yml target, the mention, PagerDuty);
    PENDING with an error frees it for the next attempt. A DM's outcome is `writes.record_dms`'s, under its claim.
    """
    result = await session.exec(
        update(PageTarget)
        .where(col(PageTarget.id) == target_id, col(PageTarget.state) == TargetState.PENDING)
        .values(
            state=state,
            error=error[:500] if error else None,
            done_at=None if state == TargetState.PENDING else now,
            claim_expires_at=None,
        )
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def mark_invited(session: AsyncSession, *, target_ids: list[int]) -> None:
    if target_ids:
        await session.exec(update(PageTarget).where(col(PageTarget.id).in_(target_ids)).values(invited=True))
        await session.commit()


async def told_escalated(
    session: AsyncSession, *, incident_id: int, level: int, repeat: int, users: list[str]
) -> dict[str, int]:
    """Who of `users`, reached by this level, had a note that it escalated rather than a page (`paged_before`,
    as the DM chose), with the level they were paged at; for the channel mention and the record."""
    if level == 1 or repeat or not users:
        return {}
    found = await paged_before(session, incident_id=incident_id, level=level)
    return {user: found[user] for user in users if user in found}
