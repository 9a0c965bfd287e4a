"""Reminders in the database: plan, read, defer, finish (with the timeline event), cancel.

Planning twice (or on two replicas) inserts once: a unique (incident, kind, seq) index.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import func, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import Reminders, Severity
from bot.escalation.leases import claimable, held, mark_sent, pending
from bot.escalation.models import Reminder, ReminderKind
from bot.incidents.models import Incident, Status
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind


async def reminders(session: AsyncSession, *, incident_id: int, kind: str | None = None) -> list[Reminder]:
    query = select(Reminder).where(Reminder.incident_id == incident_id)
    if kind is not None:
        query = query.where(Reminder.kind == kind)
    return list((await session.exec(query.order_by(col(Reminder.kind), col(Reminder.seq)))).all())


async def due_reminders(
    session: AsyncSession, *, now: datetime, limit: int = 100, incident_id: int | None = None
) -> list[int]:
    """Reminders that are due and free to claim, oldest first (of one incident, or of all)."""
    query = select(Reminder.id).where(*claimable(Reminder, now))
    if incident_id is not None:
        query = query.where(Reminder.incident_id == incident_id)
    query = query.order_by(col(Reminder.due_at)).limit(limit)
    return [row_id for row_id in (await session.exec(query)).all() if row_id is not None]


async def postmortem_finished(session: AsyncSession, *, incident_id: int) -> bool:
    """A post-mortem is finished when a `postmortem` timeline event says `{"finished": true}`."""
    found = await timeline.events(session, incident_id=incident_id, kinds=[Kind.POSTMORTEM])
    # A later draft (`"finished": false`) does not reopen it: drafting again after finishing is not undoing.
    return any(events.read_as(event, events.PostmortemEvent).finished for event in found)


async def _next_seq(session: AsyncSession, *, incident_id: int, kind: str) -> int:
    query = select(func.max(Reminder.seq)).where(Reminder.incident_id == incident_id, Reminder.kind == kind)
    current = (await session.exec(query)).one()
    return 0 if current is None else int(current) + 1


async def _insert_reminder(session: AsyncSession, reminder: Reminder) -> Reminder | None:
    session.add(reminder)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # another replica inserted the same (incident, kind, seq)
        return None
    return reminder


def status_update_due(incident: Incident, config: Reminders) -> datetime:
    """When the channel should be reminded if nobody posts a status update."""
    basis = incident.last_status_update_at or incident.declared_at
    return utc(basis) + config.status_update_every


def wants_status_reminders(incident: Incident, config: Reminders) -> bool:
    return incident.is_open and Severity(incident.severity) in config.status_update_severities


async def incidents_never_reminded(
    session: AsyncSession, *, config: Reminders, declared_after: datetime, declared_before: datetime
) -> list[Incident]:
    """Open incidents that want status reminders and never had one planned: a crash between the declare
    (or a severity raise) and its planning. Their pages are recovered apart, and only when anyone is paged."""
    planned = select(Reminder.id).where(
        col(Reminder.incident_id) == col(Incident.id), col(Reminder.kind) == ReminderKind.STATUS_UPDATE
    )
    query = select(Incident).where(
        col(Incident.status) != Status.RESOLVED,
        col(Incident.severity).in_(list(config.status_update_severities)),
        col(Incident.declared_at) >= declared_after,
        col(Incident.declared_at) <= declared_before,
        ~planned.exists(),
    )
    return list((await session.exec(query)).all())


async def plan_status_reminder(
    session: AsyncSession, *, incident: Incident, config: Reminders, now: datetime, fresh: bool = False
) -> Reminder | None:
    """Make sure an open P1/P2 incident has one pending status reminder; cancel it for other severities.

    `fresh`: the incident was just declared, so it has no reminder yet: nothing to read or cancel
    (a second planning still adds nothing: (incident, kind, seq) is unique).
    """
    assert incident.id is not None
    kind = ReminderKind.STATUS_UPDATE
    if fresh:
        if not wants_status_reminders(incident, config):
            return None
        due = max(status_update_due(incident, config), now)
        return await _insert_reminder(
            session, Reminder(incident_id=incident.id, kind=kind, seq=0, due_at=due, created_at=now)
        )
    if not wants_status_reminders(incident, config):
        await cancel_reminders(
            session,
            incident_id=incident.id,
            kind=kind,
            now=now,
            reason=f"no status reminders for {incident.severity}",
        )
        return None
    pending_now = [r for r in await reminders(session, incident_id=incident.id, kind=kind) if r.is_pending]
    if pending_now:
        return pending_now[0]
    seq = await _next_seq(session, incident_id=incident.id, kind=kind)
    due = max(status_update_due(incident, config), now)
    return await _insert_reminder(
        session, Reminder(incident_id=incident.id, kind=kind, seq=seq, due_at=due, created_at=now)
    )


async def plan_postmortem_reminder(
    session: AsyncSession, *, incident: Incident, config: Reminders, now: datetime
) -> Reminder | None:
    """After resolution, one chase for an unfinished post-mortem (planning it again plans nothing)."""
    assert incident.id is not None
    kind = ReminderKind.POSTMORTEM
    existing = await reminders(session, incident_id=incident.id, kind=kind)
    resolved = utc(incident.resolved_at) if incident.resolved_at else now
    # Pending, or planned since this resolve (IncidentResolved again after a crash, once it was sent).
    planned = next((r for r in existing if r.is_pending or utc(r.created_at) >= resolved), None)
    if planned is not None:
        return planned if planned.is_pending else None
    seq = (max(r.seq for r in existing) + 1) if existing else 0
    return await _insert_reminder(
        session,
        Reminder(
            incident_id=incident.id,
            kind=kind,
            seq=seq,
            due_at=resolved + config.postmortem_due_after,
            created_at=now,
        ),
    )


async def defer_reminder(session: AsyncSession, *, reminder_id: int, token: str, due_at: datetime) -> bool:
    """A status update came in since this reminder was planned: move it instead of sending."""
    result = await session.exec(
        update(Reminder)
        .where(*held(Reminder, reminder_id, token))
        .values(due_at=due_at, claim_token=None, claimed_at=None, claim_expires_at=None)
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def finish_reminder(
    session: AsyncSession,
    *,
    reminder_id: int,
    token: str,
    now: datetime,
    sent_to: list[str],
    error: str | None,
    late_after: timedelta,
    next_due: datetime | None,
) -> Reminder | None:
    """Mark sent with a timeline event and, for repeating reminders, plan the next one."""
    marked = await mark_sent(
        session,
        model=Reminder,
        row_id=reminder_id,
        token=token,
        now=now,
        late_after=late_after,
        sent_to=list(sent_to),
        error=(error or None) and error[:2000],
    )
    if marked is None:
        return None
    reminder, late, delay = marked
    what = "status update" if reminder.kind == ReminderKind.STATUS_UPDATE else "post-mortem"
    await timeline.add(
        session,
        incident_id=reminder.incident_id,
        at=now,
        # A reminder given up is finished too (not retried again), but nobody was reminded.
        text=f"Reminded the channel about the {what}"
        if not error
        else f"Could not remind the channel about the {what} ({error[:300]})",
        payload=events.ReminderSent(
            reminder_id=reminder.id,
            kind=str(reminder.kind),
            seq=reminder.seq,
            sent_to=list(sent_to),
            late=late,
            late_seconds=round(delay, 3),
        ),
    )
    if next_due is not None:
        session.add(
            Reminder(
                incident_id=reminder.incident_id,
                kind=reminder.kind,
                seq=reminder.seq + 1,
                due_at=next_due,
                created_at=now,
            )
        )
    await session.commit()
    return await session.get(Reminder, reminder_id, populate_existing=True)


async def cancel_reminders(
    session: AsyncSession, *, incident_id: int, now: datetime, reason: str, kind: str | None = None
) -> int:
    conditions = [col(Reminder.incident_id) == incident_id, *pending(Reminder)]
    if kind is not None:
        conditions.append(col(Reminder.kind) == kind)
    result = await session.exec(
        update(Reminder).where(*conditions).values(cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()
    return int(result.rowcount or 0)
