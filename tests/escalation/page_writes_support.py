"""Pages planned and due, and their recipient rows, for the page-writes tests (claims and batching)."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages import targets as recipient_rows
from tests.escalation.conftest import MakeEscalator, config, declare

LATER_LEVELS = {
    "levels": [
        {"name": "Lead", "after": "5m", "notify": ["U0LEAD"]},
        {"name": "CTO", "after": "10m", "notify": ["U0CTO"]},
    ]
}


async def planned_pages(db: Database, clock: FakeClock, make_escalator: MakeEscalator, incidents: int) -> list[Page]:
    """`incidents` incidents with levels due in 5 and 10 minutes, planned and not due yet."""
    escalator = make_escalator(config(escalation=LATER_LEVELS))
    for n in range(incidents):
        incident = await declare(db, clock, channel_id=f"C0INC{n}")
        assert incident.id is not None
        await escalator.incident_declared(incident.id)
    async with db.session() as session:
        return list((await session.exec(select(Page).order_by(col(Page.id)))).all())


async def due_first_levels(db: Database, clock: FakeClock, make_escalator: MakeEscalator, incidents: int) -> list[Page]:
    """Level 1 of `incidents` incidents, due now (level 2 is not)."""
    pages = [p for p in await planned_pages(db, clock, make_escalator, incidents) if p.level == 1]
    clock.advance(timedelta(minutes=5))
    return pages


def lead(page: Page) -> list[recipient_rows.NewTarget]:
    return [
        recipient_rows.NewTarget(TargetKind.USER, "U0LEAD"),
        recipient_rows.NewTarget(TargetKind.TARGET, "S0GONE", TargetState.FAILED, "gone"),
    ]


async def targets(db: Database, page_id: int) -> list[PageTarget]:
    async with db.session() as session:
        return await recipient_rows.targets(session, page_id=page_id)
