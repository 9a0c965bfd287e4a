"""A public component renamed in bot.yml keeps its history: `status_page.renamed: {old name: new name}`.

Stored rows name components by their public name, so a rename alone would start the component's
90 days of bars from nothing and leave published updates naming a component that no longer exists
(a resolution would then not set it back to operational on Statuspage). At start the rows move to
the new name: daily probe counts merged into the new name's, updates naming the new one. It is one
transaction that replicas take in turn (PostgreSQL: an advisory lock); a second run finds nothing
to move. The public id stays the old name's (`StatusPageConfig.id_name`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

from sqlalchemy import text
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.statuspage.models import ComponentDay, PublicUpdate

log = logging.getLogger(__name__)

_LOCK = 0x5A7E_9A6E  # any constant: replicas starting at once move the rows one after the other


async def apply(session: AsyncSession, *, renamed: Mapping[str, str]) -> tuple[int, int]:
    """Move stored rows from each old name to its new one; (days moved or merged, updates rewritten)."""
    if not renamed:
        return 0, 0
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK})
    days = 0
    for old, new in renamed.items():
        for row in (await session.exec(select(ComponentDay).where(col(ComponentDay.component) == old))).all():
            await _move_day(session, row, new)
            days += 1
    updates = 0
    for update in (await session.exec(select(PublicUpdate))).all():  # a few per public incident, 90 days' worth
        names = list(dict.fromkeys(renamed.get(name, name) for name in update.components))
        if names != update.components:
            update.components = names
            updates += 1
    await session.commit()
    return days, updates


async def _move_day(session: AsyncSession, row: ComponentDay, new: str) -> None:
    into = (
        await session.exec(
            select(ComponentDay).where(col(ComponentDay.component) == new, col(ComponentDay.day) == row.day)
        )
    ).first()
    if into is None:
        row.component = new
        return
    into.probes += row.probes
    into.degraded += row.degraded
    into.down += row.down
    if utc(row.last_at) > utc(into.last_at):
        into.last_status, into.last_at = row.last_status, row.last_at
    await session.delete(row)
