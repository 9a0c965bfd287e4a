"""When impact started, and so the time to detect (impact start → declared).

An incident declared from alerts starts at its earliest alert (set when the alert group is linked,
`bot.alerts.claims`); otherwise at its declaration, until someone corrects it with
`/incident started <time>`. The correction is on the timeline (a key event) and works on resolved
incidents too, since it is usually made while writing the post-mortem.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import elapsed, format_duration, utc_text
from bot.deps import Deps
from bot.exceptions import ChatError, UsageError
from bot.incidents import service
from bot.incidents.models import Incident
from bot.incidents.ports import Notice
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind

log = logging.getLogger(__name__)

USAGE = "/incident started <HH:MM UTC | 2026-12-05T14:05Z | -15m>"
EARLIEST = timedelta(days=30)  # before the declaration: further back is surely a typo


def check(incident: Incident, *, at: datetime, now: datetime) -> None:
    if at > now:
        raise UsageError(f"{UsageError.TIME} is in the future.", usage=USAGE, times=(at,))
    if at < incident.declared_at - EARLIEST:
        raise UsageError(
            f"{UsageError.TIME} is more than 30 days before {incident.ref} was declared.", usage=USAGE, times=(at,)
        )
    if incident.resolved_at is not None and at > incident.resolved_at:
        raise UsageError(
            f"{incident.ref} was resolved at {UsageError.TIME}, before that.",
            usage=USAGE,
            times=(incident.resolved_at,),
        )


async def set_start(session: AsyncSession, *, incident: Incident, at: datetime, actor: str, now: datetime) -> Incident:
    assert incident.id is not None
    check(incident, at=at, now=now)
    previous = incident.impact_start
    await session.exec(
        update(Incident).where(col(Incident.id) == incident.id).values(impact_started_at=at, updated_at=now)
    )
    detect = max(elapsed(at, incident.declared_at), timedelta(0))  # as the post-mortem counts it
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        text=f"impact start set to {utc_text(at, '%Y-%m-%d %H:%M:%S')} (time to detect {format_duration(detect)})",
        key=True,
        payload=events.Impact(impact_started_at=at, previous=previous),
    )
    await session.commit()
    await session.refresh(incident)
    return incident


async def correct(deps: Deps, *, incident_id: int, at: datetime, actor: str) -> Incident:
    """`/incident started`: store it, put it on the timeline, say it in the channel (best effort)."""
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        incident = await set_start(session, incident=incident, at=at, actor=actor, now=deps.clock.now())
    # The time goes as itself: the chat layer says it in each reader's time zone.
    detail = {"at": at, "time_to_detect": format_duration(incident.time_to_detect)}
    if incident.channel_id:
        try:
            await deps.incident_chat.post_notice(
                incident=incident, notice=Notice(kind=Kind.IMPACT, actor=actor, detail=detail)
            )
        except ChatError as exc:
            log.warning("%s: could not say the new impact start in the channel: %s", incident.ref, exc)
    return incident
