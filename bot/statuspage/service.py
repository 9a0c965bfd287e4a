"""Public updates, component health days and the status page's timers, in the database.

Keyword-only functions on an `AsyncSession`. A publish writes its update, its timeline event and
(when Atlassian Statuspage is configured) its outbox row in one transaction: all or nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete, func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.exceptions import InvalidState
from bot.incidents.models import Incident, Status
from bot.statuspage import timers
from bot.statuspage.models import (
    ComponentStatus,
    PublicReminder,
    PublicUpdate,
    StatuspageIncident,
    StatuspageSync,
)
from bot.timeline import events
from bot.timeline import service as timeline

HISTORY_DAYS = 90


@dataclass(frozen=True)
class Draft:
    """What one publish says, with every default already settled by the flow."""

    title: str
    status: str
    impact: str
    components: list[str]
    message: str


def shown() -> Any:
    """Updates still public: not withdrawn (a withdrawn incident is on no public output, nor resolved)."""
    return col(PublicUpdate.withdrawn_at).is_(None)


async def last_departure(session: AsyncSession, *, now: datetime) -> datetime | None:
    """When a public incident last left the page, which changed the page as much as a publish: withdrawn,
    or resolved more than `HISTORY_DAYS` ago (it left the history then). Both are facts of the rows, so
    every replica dates the page alike, and the page's date never goes back when its newest entry leaves."""
    withdrawn = (await session.exec(select(func.max(PublicUpdate.withdrawn_at)))).one()
    shown_update = select(PublicUpdate.id).where(col(PublicUpdate.incident_id) == col(Incident.id), shown())
    aged = select(func.max(Incident.resolved_at)).where(
        col(Incident.private).is_(False),
        col(Incident.status) == Status.RESOLVED,
        col(Incident.resolved_at) < now - timedelta(days=HISTORY_DAYS),
        shown_update.exists(),
    )
    resolved = (await session.exec(aged)).one()
    found = [utc(withdrawn)] if withdrawn else []
    found += [utc(resolved) + timedelta(days=HISTORY_DAYS)] if resolved else []
    return max(found, default=None)


async def last_update(session: AsyncSession, *, incident_id: int) -> PublicUpdate | None:
    query = select(PublicUpdate).where(PublicUpdate.incident_id == incident_id, shown())
    return (await session.exec(query.order_by(col(PublicUpdate.id).desc()).limit(1))).first()


async def update_before(session: AsyncSession, *, incident_id: int, before: int) -> PublicUpdate | None:
    """The public update published just before the update `before`."""
    query = select(PublicUpdate).where(PublicUpdate.incident_id == incident_id, col(PublicUpdate.id) < before, shown())
    return (await session.exec(query.order_by(col(PublicUpdate.id).desc()).limit(1))).first()


async def updates(session: AsyncSession, *, incident_id: int) -> list[PublicUpdate]:
    query = select(PublicUpdate).where(PublicUpdate.incident_id == incident_id, shown()).order_by(col(PublicUpdate.id))
    return list((await session.exec(query)).all())


async def add_update(
    session: AsyncSession, *, incident: Incident, draft: Draft, actor: str, now: datetime, sync: bool
) -> PublicUpdate:
    """The update, its timeline event (who published what), and its Statuspage outbox row; one commit."""
    row = await _insert(session, incident=incident, draft=draft, actor=actor, now=now)
    if draft.status != Status.RESOLVED:
        await _still_open(session, incident=incident)
    return await _recorded(session, row=row, draft=draft, actor=actor, now=now, sync=sync)


async def _insert(
    session: AsyncSession, *, incident: Incident, draft: Draft, actor: str, now: datetime
) -> PublicUpdate:
    assert incident.id is not None
    row = PublicUpdate(
        incident_id=incident.id,
        title=draft.title,
        status=draft.status,
        impact=draft.impact,
        components=list(draft.components),
        message=draft.message,
        published_by=actor,
        published_at=now,
    )
    session.add(row)
    await session.flush()
    assert row.id is not None
    return row


async def _recorded(
    session: AsyncSession, *, row: PublicUpdate, draft: Draft, actor: str, now: datetime, sync: bool
) -> PublicUpdate:
    assert row.id is not None
    await timeline.add(
        session,
        incident_id=row.incident_id,
        at=now,
        actor=actor,
        text=draft.message,
        key=True,
        payload=events.PublicUpdatePublished(
            update_id=row.id,
            title=draft.title,
            status=draft.status,
            impact=draft.impact,
            components=list(draft.components),
        ),
    )
    if sync:
        session.add(StatuspageSync(incident_id=row.incident_id, update_id=row.id, due_at=now, created_at=now))
    await session.commit()
    await session.refresh(row)
    return row


async def lock_incident(session: AsyncSession, *, incident_id: int) -> Incident | None:
    """The incident row as committed now, locked until this transaction ends (PostgreSQL; SQLite has no
    row locks: there a transaction's first write holds the database's write lock). FOR NO KEY UPDATE,
    not FOR UPDATE: it would wait on the key-share lock another publish's insert holds, as that one on
    ours (a deadlock); this one waits only for a resolve, a publish or a withdrawal in flight."""
    query = select(Incident).where(col(Incident.id) == incident_id).with_for_update(key_share=True)
    return (await session.exec(query.execution_options(populate_existing=True))).first()


async def _still_open(session: AsyncSession, *, incident: Incident) -> None:
    """A resolve committed since the flow looked must not be followed by an update that reopens the public
    incident (and its resolution). Asked after this transaction's first write, locking the incident row:
    on SQLite the write holds the database's write lock, on PostgreSQL the lock waits for a resolve in
    flight (the resolve's own lock), and a resolve waits for this update."""
    current = await lock_incident(session, incident_id=incident.id or 0)
    if current is None or not current.is_open:
        await session.rollback()
        raise InvalidState(f"{incident.ref} was resolved meanwhile; resolving it published the resolution.")


async def add_resolution(
    session: AsyncSession, *, incident: Incident, draft: Draft, actor: str, now: datetime, sync: bool
) -> PublicUpdate | None:
    """The "resolved" update, or None when another process published it first (a unique index decides),
    or when the incident was withdrawn since the flow looked (it would put it back on the page)."""
    try:
        row = await _insert(session, incident=incident, draft=draft, actor=actor, now=now)
    except IntegrityError:
        await session.rollback()
        return None
    # Locked after the first write, as `_still_open`: a withdrawal in flight commits first, and one that
    # starts now waits for this commit, then withdraws this update with the others.
    await lock_incident(session, incident_id=row.incident_id)
    earlier = select(PublicUpdate.id).where(
        col(PublicUpdate.incident_id) == row.incident_id, col(PublicUpdate.id) != row.id, shown()
    )
    if (await session.exec(earlier.limit(1))).first() is None:
        await session.rollback()
        return None
    return await _recorded(session, row=row, draft=draft, actor=actor, now=now, sync=sync)


async def withdrawn(session: AsyncSession, *, incident_id: int) -> bool:
    """Published once and withdrawn since (no update public now): nobody is nagged to publish on it."""
    query = select(PublicUpdate.withdrawn_at).where(PublicUpdate.incident_id == incident_id)
    last = (await session.exec(query.order_by(col(PublicUpdate.id).desc()).limit(1))).first()
    return last is not None


async def unpublished_resolutions(session: AsyncSession, *, resolved_before: datetime, limit: int = 20) -> list[int]:
    """Public incidents resolved before `resolved_before` whose "resolved" update was never published.

    The resolve publishes it from an in-process signal; a crash right after the resolve's commit
    loses that, and this is how the sweep finds it again.
    """
    public = select(PublicUpdate.id).where(col(PublicUpdate.incident_id) == col(Incident.id), shown())
    resolution = public.where(col(PublicUpdate.status) == Status.RESOLVED)
    query = (
        select(Incident.id)
        .where(
            col(Incident.status) == Status.RESOLVED,
            col(Incident.resolved_at) <= resolved_before,
            col(Incident.private).is_(False),
            public.exists(),
            ~resolution.exists(),
        )
        .order_by(col(Incident.id))
        .limit(limit)
    )
    return [number for number in (await session.exec(query)).all() if number is not None]


async def public_rows(session: AsyncSession, *, now: datetime) -> list[tuple[Incident, PublicUpdate]]:
    """Every update of every public incident that is open or was resolved in the last 90 days.

    Private incidents are left out here, in the query, whatever their updates say: an incident
    made private after it was published disappears from the page at the next rebuild.
    """
    since = now - timedelta(days=HISTORY_DAYS)
    query = (
        select(Incident, PublicUpdate)
        .join(PublicUpdate, col(PublicUpdate.incident_id) == col(Incident.id))
        .where(
            col(Incident.private).is_(False),
            shown(),
            or_(col(Incident.status) != Status.RESOLVED, col(Incident.resolved_at) >= since),
        )
        .order_by(col(Incident.id), col(PublicUpdate.id))
    )
    return [(incident, row) for incident, row in (await session.exec(query)).all()]


async def open_component_statuses(session: AsyncSession, *, besides: int) -> dict[str, ComponentStatus]:
    """What the other open public incidents' latest updates say of each component now (the worst of them)."""
    latest = (
        select(func.max(PublicUpdate.id))
        .join(Incident, col(Incident.id) == col(PublicUpdate.incident_id))
        .where(
            col(PublicUpdate.incident_id) != besides,
            col(Incident.private).is_(False),
            shown(),
            col(Incident.status) != Status.RESOLVED,
        )
        .group_by(col(PublicUpdate.incident_id))
    )
    query = select(PublicUpdate).where(col(PublicUpdate.id).in_(latest), col(PublicUpdate.status) != Status.RESOLVED)
    worst: dict[str, ComponentStatus] = {}
    for row in (await session.exec(query)).all():
        for component in row.components:
            status = row.status_of(component)
            if component not in worst or worst[component].rank < status.rank:
                worst[component] = status
    return worst


# --- reminders to publish --------------------------------------------------------------------


async def plan_reminder(session: AsyncSession, *, incident_id: int, due_at: datetime, now: datetime) -> PublicReminder:
    """One pending reminder per incident: the existing one, or a new one due at `due_at`."""
    pending = await session.exec(
        select(PublicReminder).where(PublicReminder.incident_id == incident_id, *timers.pending(PublicReminder))
    )
    found = pending.first()
    if found is not None:
        return found
    current = (
        await session.exec(select(func.max(PublicReminder.seq)).where(PublicReminder.incident_id == incident_id))
    ).one()
    row = PublicReminder(
        incident_id=incident_id, seq=0 if current is None else int(current) + 1, due_at=due_at, created_at=now
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # another replica planned it
        again = await session.exec(
            select(PublicReminder).where(PublicReminder.incident_id == incident_id, *timers.pending(PublicReminder))
        )
        return again.one()
    return row


async def defer_reminder(session: AsyncSession, *, reminder_id: int, token: str, due_at: datetime) -> bool:
    """Someone published since it was planned: move it instead of sending. Its attempts start again: a post an
    earlier attempt may have made was for the old due time, not one for a retry to find and record."""
    result = await session.exec(
        update(PublicReminder)
        .where(*timers.held(PublicReminder, reminder_id, token))
        .values(due_at=due_at, claim_token=None, claimed_at=None, claim_expires_at=None, attempts=0, error=None)
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def cancel_reminders(session: AsyncSession, *, incident_id: int, now: datetime, reason: str) -> int:
    result = await session.exec(
        update(PublicReminder)
        .where(col(PublicReminder.incident_id) == incident_id, *timers.pending(PublicReminder))
        .values(cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()
    return int(result.rowcount or 0)


async def reminders(session: AsyncSession, *, incident_id: int) -> list[PublicReminder]:
    query = select(PublicReminder).where(PublicReminder.incident_id == incident_id)
    return list((await session.exec(query.order_by(col(PublicReminder.seq)))).all())


async def open_incidents_without_reminder(session: AsyncSession) -> list[Incident]:
    has = select(PublicReminder.id).where(PublicReminder.incident_id == Incident.id, *timers.pending(PublicReminder))
    query = select(Incident).where(Incident.status != Status.RESOLVED, col(Incident.private).is_(False), ~has.exists())
    return list((await session.exec(query)).all())


# --- the Statuspage outbox ------------------------------------------------------------------


async def due_syncs(session: AsyncSession, *, now: datetime) -> list[int]:
    """Outbox rows to send now: of each incident only its oldest pending row, so updates go in order."""
    oldest = (
        select(func.min(StatuspageSync.id))
        .where(*timers.pending(StatuspageSync))
        .group_by(col(StatuspageSync.incident_id))
    )
    query = (
        select(StatuspageSync.id)
        .where(col(StatuspageSync.id).in_(oldest), *timers.claimable(StatuspageSync, now))
        .order_by(col(StatuspageSync.id))
    )
    return [row_id for row_id in (await session.exec(query)).all() if row_id is not None]


async def external_id(session: AsyncSession, *, incident_id: int) -> str | None:
    row = await session.get(StatuspageIncident, incident_id)
    return None if row is None else row.external_id


async def save_external_id(session: AsyncSession, *, incident_id: int, external: str, now: datetime) -> None:
    session.add(StatuspageIncident(incident_id=incident_id, external_id=external, created_at=now))
    await session.commit()


async def save_statuspage_update_id(session: AsyncSession, *, update_id: int, external: str) -> None:
    """The id of the incident update a public update became on Statuspage: what its corrections patch."""
    await session.exec(
        update(PublicUpdate).where(col(PublicUpdate.id) == update_id).values(statuspage_update_id=external[:100])
    )
    await session.commit()


async def forget_external_id(session: AsyncSession, *, incident_id: int) -> None:
    """The incident was deleted there (withdrawn): a later publish creates a new one. Uncommitted: it goes
    with the outbox row's end."""
    await session.exec(delete(StatuspageIncident).where(col(StatuspageIncident.incident_id) == incident_id))


async def touched_components(session: AsyncSession, *, incident_id: int) -> set[str]:
    """Every component any of the incident's updates named, withdrawn ones too."""
    query = select(PublicUpdate.components).where(PublicUpdate.incident_id == incident_id)
    return {c for components in (await session.exec(query)).all() for c in components}


async def syncs(session: AsyncSession, *, incident_id: int) -> list[StatuspageSync]:
    query = select(StatuspageSync).where(StatuspageSync.incident_id == incident_id)
    return list((await session.exec(query.order_by(col(StatuspageSync.id)))).all())


async def oldest_pending_sync(session: AsyncSession) -> datetime | None:
    """When the oldest update still waiting for Statuspage was published (for /health)."""
    query = select(func.min(StatuspageSync.created_at)).where(*timers.pending(StatuspageSync))
    value = (await session.exec(query)).one()
    return None if value is None else utc(value)
