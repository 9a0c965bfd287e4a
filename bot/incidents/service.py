"""Incident state changes in the database, each with its timeline event in the same transaction.

Transitions that two people (or two replicas) may race on (acknowledge, resolve) are conditional
UPDATEs, so only one of them wins and the other is told.
"""

from __future__ import annotations

import secrets
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Severity, is_user_id
from bot.exceptions import InvalidState, NotFound
from bot.incidents.models import INCIDENTS, ActionItem, Incident, IncidentCreate, Role, Status
from bot.timeline import events
from bot.timeline import service as timeline

_INSERT_RETURNING_ID = insert(INCIDENTS).returning(INCIDENTS.c.id)


AlsoWrite = Callable[[AsyncSession, int], Awaitable[None]]
# A write that goes first in the incident's transaction (a request's replay claim): raising, it leaves no row
# and uses no number (a PostgreSQL sequence does not give back a number a rolled-back INSERT took).
FirstWrite = Callable[[AsyncSession], Awaitable[None]]


async def create(
    session: AsyncSession,
    *,
    data: IncidentCreate,
    now: datetime,
    claim_setup: bool = False,
    first: FirstWrite | None = None,
    also: AlsoWrite | None = None,
) -> Incident:
    """Insert the incident and its first timeline event; `claim_setup`: the row holds the setup's lease from birth.

    The declaration's own setup starts at once, so the lease goes in with the row (no second write).
    `first` goes before the INSERT, `also` writes the caller's own record of the new incident (given its id),
    both in the same transaction,
    so a crash never leaves the incident without it (an alert group's link).
    Nothing is read back: every column is the one given here or the id the INSERT returned. The
    incident returned is a value, not attached to any session (every caller only reads it).
    """
    # A person who declares leads until someone else is named; an alert source cannot lead.
    commander = data.declared_by if is_user_id(data.declared_by) else None
    values = {"declared_at": now, "updated_at": now, "commander": commander, "planned_severity": data.severity}
    values["secret"] = secrets.token_hex(16) if data.private else None
    incident = Incident.model_validate(data, update={**values, "setup_claimed_at": now if claim_setup else None})
    if first is not None:
        await first(session)
    # Core, on the table: the ORM's flush would only turn the object back into these values.
    result = await session.exec(_INSERT_RETURNING_ID, params=incident.model_dump(exclude={"id"}))
    incident.id = result.scalar_one()
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=data.declared_by,
        text=data.title,
        key=True,
        payload=events.Declared(severity=str(data.severity), service=data.service, playbook=data.playbook_id),
    )
    if also is not None:
        await also(session, incident.id)
    await session.commit()
    return incident


async def get(session: AsyncSession, *, number: int) -> Incident:
    incident = await session.get(Incident, number)
    if incident is None:
        raise NotFound(
            f"There is no incident INC-{number} that you can see. `/incident list` shows the open incidents."
        )
    return incident


async def by_channel(session: AsyncSession, *, channel_id: str) -> Incident | None:
    result = await session.exec(select(Incident).where(Incident.channel_id == channel_id))
    return result.first()


async def list_open(session: AsyncSession) -> list[Incident]:
    result = await session.exec(
        select(Incident).where(Incident.status != Status.RESOLVED).order_by(col(Incident.id).desc())
    )
    return list(result.all())


async def list_since(session: AsyncSession, *, since: datetime) -> list[Incident]:
    result = await session.exec(select(Incident).where(col(Incident.declared_at) >= since).order_by(col(Incident.id)))
    return list(result.all())


async def count_open(session: AsyncSession) -> int:
    result = await session.exec(select(func.count()).select_from(Incident).where(Incident.status != Status.RESOLVED))
    return int(result.one())


def _require_open(incident: Incident, action: str) -> None:
    if not incident.is_open:
        raise InvalidState(f"{incident.ref} is resolved already; {action} needs an open incident.")


async def _update_open(session: AsyncSession, *, incident: Incident, action: str, values: dict[str, Any]) -> None:
    """Write `values` only while the incident is still open; `incident` then shows the row as written.

    The incident was read a moment ago; a resolve may have landed since (a Resolve click racing
    `/incident update monitoring`). Writing from that read would reopen it, so the resolve wins.
    """
    assert incident.id is not None
    result = await session.exec(
        update(Incident)
        .where(col(Incident.id) == incident.id, col(Incident.status) != Status.RESOLVED)
        .values(**values)
    )
    if not result.rowcount:
        await session.rollback()
        await session.refresh(incident)
        raise InvalidState(f"{incident.ref} was resolved meanwhile; {action} needs an open incident.")
    await session.refresh(incident)  # in this transaction: our write, and what others committed before it


async def set_status(
    session: AsyncSession, *, incident: Incident, status: Status, message: str, actor: str, now: datetime
) -> Status:
    """Returns the old status. Re-stating the same status is a status update too (it resets the reminder)."""
    _require_open(incident, "a status update")
    if status == Status.RESOLVED:
        raise InvalidState("Use `/incident resolve [summary]` to resolve.")
    old = incident.status
    values: dict[str, Any] = {"status": status, "last_status_update_at": now, "updated_at": now}
    if status == Status.MONITORING:
        values["mitigated_at"] = func.coalesce(col(Incident.mitigated_at), now)
    await _update_open(session, incident=incident, action="a status update", values=values)
    assert incident.id is not None
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        text=message,
        key=old != status,
        payload=events.StatusChanged(old=str(old), new=str(status)),
    )
    await session.commit()
    return old


async def set_severity(
    session: AsyncSession, *, incident: Incident, severity: Severity, actor: str, now: datetime
) -> Severity:
    _require_open(incident, "changing severity")
    old = incident.severity
    if old == severity:
        raise InvalidState(f"{incident.ref} is {severity} already.")
    await _update_open(
        session, incident=incident, action="changing severity", values={"severity": severity, "updated_at": now}
    )
    assert incident.id is not None
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        key=True,
        text=f"{old} → {severity}",
        payload=events.SeverityChanged(old=str(old), new=str(severity)),
    )
    await session.commit()
    return Severity(old)


async def assign_role(
    session: AsyncSession, *, incident: Incident, role: Role, user: str, actor: str, now: datetime
) -> str | None:
    _require_open(incident, "assigning a role")
    old = incident.role(role)
    await _update_open(
        session, incident=incident, action="assigning a role", values={role.value: user, "updated_at": now}
    )
    assert incident.id is not None
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        text=f"{role.value}: {user}",
        payload=events.RoleAssigned(role=role.value, user=user, previous=old),
    )
    await session.commit()
    return old


async def acknowledge(
    session: AsyncSession, *, incident: Incident, actor: str, now: datetime, for_whom: Sequence[str] = ()
) -> bool:
    """True for the first acknowledgement; later ones are recorded but change nothing.

    `for_whom`: the people paged, when `actor` acknowledged a page that was not theirs.
    """
    _require_open(incident, "acknowledging")
    assert incident.id is not None
    result = await session.exec(
        update(Incident)
        .where(
            col(Incident.id) == incident.id,
            col(Incident.acknowledged_at).is_(None),
            # A resolve may have landed since `incident` was read: an acknowledgement after it would put
            # "acknowledged" after "resolved" in the post-mortem's times.
            col(Incident.status) != Status.RESOLVED,
        )
        .values(acknowledged_at=now, acknowledged_by=actor, updated_at=now)
    )
    first = bool(result.rowcount)
    if not first:
        await session.refresh(incident)
        _require_open(incident, "acknowledging")
    payload = events.Acknowledged(first=first, for_whom=list(for_whom) or None)
    text = f"acknowledged by {actor} for {', '.join(for_whom)}" if for_whom else ""
    await timeline.add(session, incident_id=incident.id, at=now, actor=actor, text=text, key=first, payload=payload)
    await session.commit()
    await session.refresh(incident)
    return first


async def resolve(session: AsyncSession, *, incident: Incident, summary: str, actor: str, now: datetime) -> Incident:
    assert incident.id is not None
    result = await session.exec(
        update(Incident)
        .where(col(Incident.id) == incident.id, col(Incident.status) != Status.RESOLVED)
        .values(
            status=Status.RESOLVED,
            resolved_at=now,
            resolved_by=actor,
            resolution=summary,
            updated_at=now,
            last_status_update_at=now,
            # Resolving without a `monitoring` step still ends the impact.
            mitigated_at=func.coalesce(col(Incident.mitigated_at), now),
        )
    )
    if not result.rowcount:
        await session.rollback()
        await session.refresh(incident)
        raise InvalidState(
            f"{incident.ref} was resolved already by {InvalidState.PEOPLE}.", people=[incident.resolved_by or "?"]
        )
    await timeline.add(
        session, incident_id=incident.id, at=now, actor=actor, text=summary, key=True, payload=events.Resolved()
    )
    await session.commit()
    await session.refresh(incident)
    return incident


async def add_note(session: AsyncSession, *, incident: Incident, text: str, actor: str, now: datetime) -> None:
    assert incident.id is not None
    await timeline.add(session, incident_id=incident.id, at=now, actor=actor, text=text, payload=events.NoteAdded())
    await session.commit()


async def add_action_item(
    session: AsyncSession, *, incident: Incident, text: str, owner: str | None, actor: str, now: datetime
) -> ActionItem:
    assert incident.id is not None
    item = ActionItem(incident_id=incident.id, text=text, owner=owner, created_by=actor, created_at=now)
    session.add(item)
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        text=text,
        payload=events.ActionItemChanged(owner=owner),
    )
    await session.commit()
    await session.refresh(item)
    return item


async def action_items(session: AsyncSession, *, incident_id: int) -> list[ActionItem]:
    result = await session.exec(
        select(ActionItem).where(ActionItem.incident_id == incident_id).order_by(col(ActionItem.id))
    )
    return list(result.all())


def age(incident: Incident, *, now: datetime) -> timedelta:
    return (incident.resolved_at or now) - incident.declared_at
