"""Reading pages: an incident's, the due ones, the next due time, incidents that lost theirs or a re-plan;
and the severities an incident has had since its acknowledgement (what its re-plan may page)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import Severity
from bot.escalation.leases import claimable, free_at
from bot.escalation.models import Page
from bot.incidents.models import Incident
from bot.timeline import events
from bot.timeline.models import Kind, TimelineEvent


async def pages(session: AsyncSession, *, incident_id: int) -> list[Page]:
    query = select(Page).where(Page.incident_id == incident_id).order_by(col(Page.level), col(Page.repeat))
    return list((await session.exec(query)).all())


async def page_with_incident(session: AsyncSession, *, page_id: int) -> tuple[Page, Incident | None] | None:
    query = (
        select(Page, Incident)
        .outerjoin(Incident, col(Incident.id) == col(Page.incident_id))
        .where(col(Page.id) == page_id)
    )
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])


async def due_pages(
    session: AsyncSession, *, now: datetime, limit: int = 100, incident_id: int | None = None
) -> list[tuple[int, int]]:
    """(page, incident) of pages due and free to claim (of one incident, or of all), oldest and lowest level first."""
    query = select(Page.id, Page.incident_id).where(*claimable(Page, now))
    if incident_id is not None:
        query = query.where(Page.incident_id == incident_id)
    query = query.order_by(col(Page.due_at), col(Page.level), col(Page.repeat)).limit(limit)
    return [(page_id, incident) for page_id, incident in (await session.exec(query)).all() if page_id is not None]


async def pages_free_by(session: AsyncSession, *, until: datetime, limit: int) -> list[tuple[datetime, int, int]]:
    """(free at, page, incident) of pending pages free to claim by `until`, in the order they are to start."""
    query = (
        select(Page.due_at, Page.claim_expires_at, Page.id, Page.incident_id)
        .where(*claimable(Page, until))
        .order_by(free_at(Page), col(Page.due_at), col(Page.level), col(Page.repeat))
        .limit(limit)
    )
    rows = (await session.exec(query)).all()
    return [(utc(max(due, expires or due)), page_id, incident) for due, expires, page_id, incident in rows if page_id]


async def open_incidents_without_pages(
    session: AsyncSession, *, declared_after: datetime, declared_before: datetime
) -> list[Incident]:
    """Incidents whose planning was lost (a crash between declaring and paging)."""
    has_pages = select(Page.id).where(Page.incident_id == Incident.id).exists()
    query = select(Incident).where(
        Incident.status != "resolved",
        col(Incident.declared_at) >= declared_after,
        col(Incident.declared_at) <= declared_before,
        ~has_pages,
    )
    return list((await session.exec(query)).all())


async def open_incidents_planned_for_another_severity(session: AsyncSession) -> list[int]:
    """Incidents whose severity changed and whose re-plan was lost (a crash between the two)."""
    query = select(Incident.id).where(
        Incident.status != "resolved",
        col(Incident.planned_severity).is_not(None),
        col(Incident.planned_severity) != col(Incident.severity),
    )
    return [incident_id for incident_id in (await session.exec(query)).all() if incident_id is not None]


async def severities_since(session: AsyncSession, *, incident: Incident, since: datetime) -> list[Severity]:
    """Every severity `incident` has had from `since` on (its acknowledgement), from the timeline.

    The one it had then is the first later change's `old`; the current one is always there. A change
    in the same microsecond as the acknowledgement counts as after it: at worst a stop holds too long.
    """
    query = (
        select(TimelineEvent)
        .where(
            col(TimelineEvent.incident_id) == incident.id,
            col(TimelineEvent.kind) == Kind.SEVERITY,
            col(TimelineEvent.at) >= since,
        )
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
    )
    changes = [change for row in (await session.exec(query)).all() if (change := _change(row)) is not None]
    earlier = [changes[0][0], *(new for _, new in changes)] if changes else []
    return [*earlier, Severity(incident.severity)]


def _change(row: TimelineEvent) -> tuple[Severity, Severity] | None:
    """A severity event's (old, new); None for a row that does not read as one (logged by `events.read`)."""
    payload = events.read(row)
    if not isinstance(payload, events.SeverityChanged):
        return None
    known = {str(severity) for severity in Severity}
    if payload.old not in known or payload.new not in known:
        return None
    return Severity(payload.old), Severity(payload.new)
