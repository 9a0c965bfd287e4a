"""The public components' probed health, one row per component and UTC day (see `ComponentDay`).

Besides the day's counters, a row keeps when the component's probed status last changed: the page's
change stamp is derived from it (and from the public updates), so every replica, and a restarted one,
tells pollers the same time for the same page.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import case, literal, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.db import UTCDateTime
from bot.statuspage.models import ComponentDay, ComponentStatus


async def record_probe(
    session: AsyncSession,
    *,
    component: str,
    status: ComponentStatus,
    at: datetime,
    stale_after: timedelta | None = None,
) -> None:
    """Count one probe on the component's day (an UPDATE, or the day's first INSERT; a race retries).

    `changed_at` moves only when the status differs from the last probe's, or when that probe had gone
    stale (`stale_after`) and this one is not "operational": the page shows the probed status again (a
    stale component is shown operational, so an "operational" probe after a pause changes nothing)."""
    day = utc(at).date()
    bad = {
        "degraded": int(status in (ComponentStatus.DEGRADED, ComponentStatus.PARTIAL)),
        "down": int(status is ComponentStatus.MAJOR),
    }
    moved: Any = col(ComponentDay.last_status) != status.value
    if stale_after is not None and status is not ComponentStatus.OPERATIONAL:
        moved = or_(moved, col(ComponentDay.last_at) < at - stale_after)
    for _ in range(2):
        result = await session.exec(
            update(ComponentDay)
            .where(col(ComponentDay.component) == component, col(ComponentDay.day) == day)
            .values(
                probes=col(ComponentDay.probes) + 1,
                degraded=col(ComponentDay.degraded) + bad["degraded"],
                down=col(ComponentDay.down) + bad["down"],
                last_status=status.value,
                last_at=at,
                changed_at=case((moved, literal(at, UTCDateTime())), else_=col(ComponentDay.changed_at)),
            )
        )
        if result.rowcount:
            await session.commit()
            return
        changed = await _changed_before(session, component=component, status=status, at=at, stale_after=stale_after)
        row = ComponentDay(
            component=component, day=day, probes=1, last_status=status.value, last_at=at, changed_at=changed, **bad
        )
        session.add(row)
        try:
            await session.commit()
            return
        except IntegrityError:
            await session.rollback()  # another replica wrote the day's first probe: count on top of it


async def _changed_before(
    session: AsyncSession, *, component: str, status: ComponentStatus, at: datetime, stale_after: timedelta | None
) -> datetime:
    """A day's first probe: the status's change time carries over from the day before when it is the same."""
    query = (
        select(ComponentDay)
        .where(col(ComponentDay.component) == component, col(ComponentDay.day) < utc(at).date())
        .order_by(col(ComponentDay.day).desc())
        .limit(1)
    )
    before = (await session.exec(query)).first()
    if before is None or before.last_status != status.value or before.changed_at is None:
        return at
    if stale_after is not None and status is not ComponentStatus.OPERATIONAL and utc(before.last_at) < at - stale_after:
        return at
    return before.changed_at


async def component_days(session: AsyncSession, *, since: date) -> list[ComponentDay]:
    query = select(ComponentDay).where(col(ComponentDay.day) >= since).order_by(col(ComponentDay.day))
    return list((await session.exec(query)).all())
