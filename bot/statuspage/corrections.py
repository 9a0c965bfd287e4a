"""Correcting the last public update's message, and withdrawing a public incident published by mistake.

Both are refused where a publish is (someone who cannot see the incident, a private one), and on an
incident resolved more than `CORRECTION_WINDOW` ago: by then the page's history is a record its
readers and Statuspage's subscribers have relied on, and a mistake is noticed well within a day.
Each commits its change, its timeline event (who, and the text the public read before) and, with
Statuspage configured, its outbox row in one transaction; the page is rebuilt right after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.exceptions import ChatError, InvalidState, UsageError
from bot.incidents.models import Incident, Status
from bot.statuspage import service, timers
from bot.statuspage.flows import MAX_MESSAGE, page_of, public_one
from bot.statuspage.models import PublicReminder, PublicUpdate, StatuspageSync, SyncAction
from bot.timeline import events
from bot.timeline import service as timeline

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

EDIT_USAGE = "/incident publish edit <corrected public message>"
WITHDRAW_USAGE = "/incident unpublish"
CORRECTION_WINDOW = timedelta(days=1)


@dataclass
class Corrected:
    incident: Incident
    update: PublicUpdate  # as it reads now (edited), or the last one the public saw (withdrawn)
    previous: str
    problems: list[str] = field(default_factory=list)
    repeated: PublicUpdate | None = None  # edited with it: the update whose text the "resolved" one repeated


async def _correctable(deps: Deps, *, incident_id: int, actor: str, what: str) -> Incident:
    incident = await public_one(deps, incident_id=incident_id, actor=actor)
    resolved = incident.resolved_at
    if not incident.is_open and resolved is not None and utc(resolved) < deps.clock.now() - CORRECTION_WINDOW:
        raise InvalidState(
            f"{incident.ref} was resolved more than a day ago: its public history is a record now and cannot be "
            f"{what}. Publish nothing more on it; ask the status page's owner if it must change."
        )
    return incident


def _payload(row: PublicUpdate, *, change: str, previous: str) -> events.PublicUpdatePublished:
    return events.PublicUpdatePublished(
        update_id=row.id or 0,
        title=row.title,
        status=row.status,
        impact=row.impact,
        components=list(row.components),
        change=change,
        previous=previous,
    )


async def edit_last(deps: Deps, *, incident_id: int, actor: str, message: str) -> Corrected:
    """Replace the last public update's message everywhere; it keeps its time (and Statuspage its update).

    After a resolve the last update is the "resolved" one, which repeats the last published text: the
    correction is meant for that text, so the update a person published it in is corrected too (else
    the mistake, a leaked host name say, stays public one update below).
    """
    page = page_of(deps)
    message = message.strip()
    if not message:
        raise UsageError(
            "Write the corrected public message, e.g. `/incident publish edit We are investigating…`.", usage=EDIT_USAGE
        )
    if len(message) > MAX_MESSAGE:
        raise UsageError(f"The message is {len(message)} characters; keep it under {MAX_MESSAGE}.", usage=EDIT_USAGE)
    incident = await _correctable(deps, incident_id=incident_id, actor=actor, what="corrected")
    now = deps.clock.now()
    async with deps.db.session() as session:
        last = await service.last_update(session, incident_id=incident_id)
        if last is None:
            raise InvalidState(f"{incident.ref} has nothing on the status page to correct.")
        previous = last.message
        if previous == message:
            raise UsageError("That is what the last public update says already.", usage=EDIT_USAGE)
        repeated = await _repeated_by(session, last)
        for row in (repeated, last):
            if row is not None:
                await _edit(session, row, message=message, actor=actor, now=now, sync=page.syncing, key=row is last)
        await session.commit()
        await session.refresh(last)
        if repeated is not None:
            await session.refresh(repeated)
    log.info("corrected %s's last public update", incident.ref, extra={"incident": incident.ref})
    corrected = Corrected(incident=incident, update=last, previous=previous, repeated=repeated)
    return await _after(deps, corrected)


async def _repeated_by(session: AsyncSession, last: PublicUpdate) -> PublicUpdate | None:
    """The update a "resolved" one repeats the text of (the resolve publishes the last public message)."""
    if last.status != Status.RESOLVED:
        return None
    before = await service.update_before(session, incident_id=last.incident_id, before=last.id or 0)
    return before if before is not None and before.message == last.message else None


async def _edit(
    session: AsyncSession, row: PublicUpdate, *, message: str, actor: str, now: datetime, sync: bool, key: bool
) -> None:
    """One update's message corrected (uncommitted), on the timeline and, with Statuspage, in the outbox."""
    previous = row.message
    row.message, row.edited_at, row.edited_by = message, now, actor
    session.add(row)
    await timeline.add(
        session,
        incident_id=row.incident_id,
        at=now,
        actor=actor,
        text=f"Corrected the public update ({row.status}): {message}",
        key=key,
        payload=_payload(row, change="edited", previous=previous),
    )
    if sync:
        session.add(
            StatuspageSync(
                incident_id=row.incident_id, update_id=row.id or 0, action=SyncAction.EDIT, due_at=now, created_at=now
            )
        )


async def withdraw(deps: Deps, *, incident_id: int, actor: str) -> Corrected:
    """Take the public incident off every public output (and delete it on Statuspage)."""
    page = page_of(deps)
    incident = await _correctable(deps, incident_id=incident_id, actor=actor, what="withdrawn")
    now = deps.clock.now()
    async with deps.db.session() as session:
        last = await _withdraw_updates(session, incident_id=incident_id, actor=actor, now=now)
        if last is None:
            await session.rollback()
            raise InvalidState(f"{incident.ref} is not on the status page: there is nothing to withdraw.")
        await timeline.add(
            session,
            incident_id=incident_id,
            at=now,
            actor=actor,
            text="Withdrew the public incident from the status page",
            key=True,
            payload=_payload(last, change="withdrawn", previous=last.message),
        )
        if page.syncing:
            session.add(
                StatuspageSync(
                    incident_id=incident_id,
                    update_id=last.id or 0,
                    action=SyncAction.WITHDRAW,
                    due_at=now,
                    created_at=now,
                )
            )
        await session.commit()
    log.info("withdrew %s from the status page", incident.ref, extra={"incident": incident.ref})
    return await _after(deps, Corrected(incident=incident, update=last, previous=last.message), withdrawn_by=actor)


async def _withdraw_updates(
    session: AsyncSession, *, incident_id: int, actor: str, now: datetime
) -> PublicUpdate | None:
    """Mark every public update of the incident withdrawn (uncommitted); the last of them, or None if none.

    The incident row is locked first (PostgreSQL): a "resolved" update committed meanwhile would
    escape this statement's snapshot and put the incident back on the page; now the resolution's
    publish, holding the same lock, finishes first and is withdrawn here too, or waits and sees the
    withdrawal. On SQLite the UPDATE is the first write: it holds the write lock and sees every commit.
    The reminders to publish stop with it (`flows.wants_reminders`).
    """
    await service.lock_incident(session, incident_id=incident_id)
    result = await session.exec(
        update(PublicUpdate)
        .where(col(PublicUpdate.incident_id) == incident_id, service.shown())
        .values(withdrawn_at=now, withdrawn_by=actor)
        .returning(col(PublicUpdate.id))
    )
    ids = [row_id for row_id in result.scalars().all() if row_id is not None]
    await session.exec(
        update(PublicReminder)
        .where(col(PublicReminder.incident_id) == incident_id, *timers.pending(PublicReminder))
        .values(cancelled_at=now, cancel_reason="withdrawn from the status page")
    )
    return await session.get(PublicUpdate, max(ids), populate_existing=True) if ids else None


async def _after(deps: Deps, corrected: Corrected, *, withdrawn_by: str | None = None) -> Corrected:
    """The public first, as a publish (`flows._after_publish`): the channel's post may wait on Slack."""
    page = page_of(deps)
    await page.refresh()
    if page.syncing:
        deps.background.spawn(page.sync_due(), f"send INC-{corrected.incident.id}'s correction to Statuspage")
    try:
        if withdrawn_by is not None:
            await page.chat.post_withdrawn(incident=corrected.incident, actor=withdrawn_by)
        else:
            await page.chat.post_corrected(
                incident=corrected.incident,
                update=corrected.update,
                previous=corrected.previous,
                repeated=corrected.repeated,
            )
    except ChatError as exc:
        corrected.problems.append(f"telling the channel failed ({exc.code or exc})")
    return corrected
