"""When impact started, and so the time to detect (impact start → declared).

An incident starts at the earliest `startsAt` of the alerts of every group linked to it, when that is
before its declaration; otherwise at its declaration, until someone corrects it with
`/incident started <time>`. The alerts move it only earlier, as they arrive (`follow_alerts`, called
when a group is linked, `bot.alerts.claims`, and with each delivery on a linked group,
`bot.alerts.service`), and only while the incident is open. A person's correction is the `impact`
event on the timeline (`corrected`): once there is one, alerts never move the start again. The
correction works on resolved incidents too, since it is usually made while writing the post-mortem.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import exists, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import elapsed, format_duration, utc, utc_text
from bot.deps import Deps
from bot.exceptions import ChatError, UsageError
from bot.incidents import service
from bot.incidents.models import Incident, Status
from bot.incidents.ports import Notice
from bot.incidents.started_time import USAGE
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind, TimelineEvent

log = logging.getLogger(__name__)

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


class Started(Protocol):
    """An alert as stored or as delivered: when it started firing, and its labels (its name)."""

    @property
    def starts_at(self) -> datetime | None: ...

    @property
    def labels(self) -> Mapping[str, str]: ...


@dataclass(frozen=True)
class Moved:
    """The impact start moved earlier by an alert: to `at` (when `alertname` started firing), from `previous`."""

    at: datetime
    previous: datetime | None  # None: it was the declaration
    declared_at: datetime
    alertname: str

    @property
    def text(self) -> str:
        """The timeline's line: where the start went and why, with the time to detect before and after."""
        detect = format_duration(elapsed(self.at, self.declared_at))
        was = f"{utc_text(self.previous, '%H:%M:%S')}, " if self.previous is not None else "the declaration, "
        before = max(elapsed(self.previous or self.declared_at, self.declared_at), timedelta(0))
        return (
            f"impact start moved earlier to {utc_text(self.at, '%Y-%m-%d %H:%M:%S')}, when {self.alertname} "
            f"started firing (time to detect {detect}; it was {was}{format_duration(before)})"
        )


async def corrected(session: AsyncSession, *, incident_id: int) -> bool:
    """Has a person set the impact start (`/incident started`)? Their word stands over the alerts'."""
    person = exists().where(col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.kind) == Kind.IMPACT)
    return bool((await session.exec(select(person))).one())


async def follow_alerts(
    session: AsyncSession, *, incident_id: int, alerts: Iterable[Started], now: datetime
) -> Moved | None:
    """Move the impact start to the earliest of these alerts' starts, in the caller's transaction (not
    committed), when that is earlier than both the impact start and the declaration, the incident is
    open (a resolved incident's figures stay as they were reported) and no person has corrected it.

    The row is read once unlocked; only a move that looks due locks it (FOR NO KEY UPDATE on
    PostgreSQL, as `statuspage.service.lock_incident`: a correction or a resolve in flight commits
    first, and the correction's event is then seen; on SQLite the caller's earlier write holds the
    database's write lock) and is checked again.
    """
    started = sorted((a for a in alerts if a.starts_at is not None), key=lambda a: a.starts_at or now)
    if not started or (due := await _due(session, incident_id=incident_id, starts=started, lock=False)) is None:
        return None
    due = await _due(session, incident_id=incident_id, starts=started, lock=True)
    if due is None or await corrected(session, incident_id=incident_id):
        return None
    first, previous, declared_at = due
    earliest = first.starts_at or now
    await session.exec(
        update(Incident).where(col(Incident.id) == incident_id).values(impact_started_at=earliest, updated_at=now)
    )
    alertname = first.labels.get("alertname", "an alert")
    return Moved(at=earliest, previous=previous, declared_at=declared_at, alertname=alertname)


async def _due(
    session: AsyncSession, *, incident_id: int, starts: list[Started], lock: bool
) -> tuple[Started, datetime | None, datetime] | None:
    """The earliest alert that would move the impact start, the start and the declaration, else None.

    An alert that started more than `EARLIEST` (30 days) before the declaration is left out, as a
    person's correction that far back is refused: an alert firing for weeks is not this incident's start.
    """
    query = select(Incident.impact_started_at, Incident.declared_at, Incident.status).where(
        col(Incident.id) == incident_id
    )
    if lock:
        query = query.with_for_update(key_share=True)
    row = (await session.exec(query)).first()
    if row is None or row[2] == Status.RESOLVED:
        return None
    impact_started_at, declared_at, _ = row
    bound = min(utc(impact_started_at), utc(declared_at)) if impact_started_at is not None else utc(declared_at)
    first = next((a for a in starts if a.starts_at and a.starts_at >= utc(declared_at) - EARLIEST), None)
    if first is None or first.starts_at is None or first.starts_at >= bound:
        return None
    return first, impact_started_at, declared_at


async def note_move(
    session: AsyncSession, *, incident_id: int, moved: Moved, source: str, group_id: int, now: datetime
) -> None:
    """The move on the timeline, a key event the post-mortem lists (not committed here)."""
    await timeline.add(
        session,
        incident_id=incident_id,
        at=now,
        actor=source,
        text=moved.text,
        key=True,
        payload=events.AlertChanged(
            source=source, group_id=group_id, impact_started_at=moved.at, impact_previous=moved.previous
        ),
    )
