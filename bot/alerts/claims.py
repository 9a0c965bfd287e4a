"""Declaring from an alert group, and the group's link to its incident.

Exactly one caller declares: `UPDATE ... SET declare_state = 'claimed' WHERE declare_state IN (...)
AND incident_id IS NULL`; the incident it makes is written to the group in the incident's own
transaction (`hold_incident`), and a declare claimed long ago and never completed is found again by
`stale_declares`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.service import get_group, instances
from bot.exceptions import InvalidState
from bot.incidents import impact
from bot.incidents.models import Incident, Status
from bot.timeline import events
from bot.timeline import service as timeline


async def claim_declare(
    session: AsyncSession, *, group_id: int, states: Sequence[str], now: datetime, stale_before: datetime | None = None
) -> bool:
    """Exactly one caller wins the right to declare for this group (and episode)."""
    condition: Any = col(AlertGroup.declare_state).in_(list(states))
    if stale_before is not None:
        condition = or_(
            condition,
            (col(AlertGroup.declare_state) == DeclareState.CLAIMED)
            & (col(AlertGroup.declare_claimed_at) < stale_before),
        )
    result = await session.exec(
        update(AlertGroup)
        .where(col(AlertGroup.id) == group_id, col(AlertGroup.incident_id).is_(None), condition)
        .values(declare_state=DeclareState.CLAIMED, declare_claimed_at=now)
    )
    await session.commit()
    return bool(result.rowcount)


async def release_declare(session: AsyncSession, *, group_id: int, back_to: str, claimed_at: datetime) -> None:
    """Give back the claim taken at `claimed_at`; one the stale-declare recovery took over since stays."""
    await session.exec(
        update(AlertGroup)
        .where(
            col(AlertGroup.id) == group_id,
            col(AlertGroup.declare_state) == DeclareState.CLAIMED,
            col(AlertGroup.declare_claimed_at) == claimed_at,
        )
        # No incident came of it: a resolve seen while it was being declared has nobody to offer to.
        .values(declare_state=back_to, declare_claimed_at=None, resolve_offer_pending=False)
    )
    await session.commit()


async def hold_incident(session: AsyncSession, incident_id: int, *, group_id: int, claimed_at: datetime) -> None:
    """In the declaration's own transaction: the claimed group names the incident it is making (not
    committed here). Linking completes after the channel setup; a crash before that is finished by
    the stale-declare recovery from this, instead of declaring a second incident.

    Only while the claim is still the one taken at `claimed_at`: a declare so slow that the recovery
    gave its claim to another (`DECLARE_STALE`) raises here, and its incident's INSERT rolls back
    with it, so one alert never makes two incidents.
    """
    held = await session.exec(
        update(AlertGroup)
        .where(
            col(AlertGroup.id) == group_id,
            col(AlertGroup.declare_state) == DeclareState.CLAIMED,
            col(AlertGroup.declare_claimed_at) == claimed_at,
            col(AlertGroup.incident_id).is_(None),
        )
        .values(incident_id=incident_id)
    )
    if held.rowcount != 1:
        raise InvalidState(
            "This declaration took so long that the alert was handed back meanwhile; look in the alerts "
            "channel, and press Declare again if the alert still has no incident."
        )


async def link_incident(
    session: AsyncSession,
    *,
    group_id: int,
    incident_id: int,
    how: str,
    actor: str | None,
    source_name: str,
    now: datetime,
) -> AlertGroup:
    """Tie the claimed group to an incident and put what the alert says on the incident's timeline.

    Once: a declare that finishes after the stale-declare recovery linked its incident adds nothing.
    """
    linked = await session.exec(
        update(AlertGroup)
        .where(col(AlertGroup.id) == group_id, col(AlertGroup.declare_state) == DeclareState.CLAIMED)
        .values(
            incident_id=incident_id,
            declare_state=DeclareState.DONE,
            declared_how=how,
            revision=AlertGroup.revision + 1,
        )
    )
    if not linked.rowcount:
        await session.commit()
        return await get_group(session, group_id=group_id)
    await session.exec(update(AlertInstance).where(col(AlertInstance.group_id) == group_id).values(noticed=True))
    group = await get_group(session, group_id=group_id)
    alerts = await instances(session, group_id=group_id)
    # The groups the incident was declared from count; one linked later by a shared fingerprint does not:
    # its other alerts did not lead to this incident (the shared one already counted).
    moved = None
    if how != "fingerprint":
        moved = await impact.follow_alerts(session, incident_id=incident_id, alerts=alerts, now=now)
    await timeline.add(
        session,
        incident_id=incident_id,
        at=now,
        actor=actor or group.source,
        text=_link_text(group, alerts, how=how, source_name=source_name, moved=moved),
        key=True,
        payload=events.AlertChanged(
            source=group.source,
            group_id=group_id,
            group_key=group.group_key[:500],
            how=how,
            rule=group.rule,
            labels=group.common_labels,
            fingerprints=[a.fingerprint for a in alerts][:50],
            impact_started_at=moved.at if moved else None,
            impact_previous=moved.previous if moved else None,
        ),
    )
    await session.commit()
    return group


def _link_text(
    group: AlertGroup, alerts: Sequence[AlertInstance], *, how: str, source_name: str, moved: impact.Moved | None
) -> str:
    """The link's key event on the incident's timeline: how the alert came to it, and any impact move."""
    firing = [a for a in alerts if a.status == "firing"]
    names = sorted({a.labels.get("alertname", "alert") for a in alerts})
    verb = {"auto": "declared automatically from", "button": "declared from", "fingerprint": "linked to"}.get(
        how, "linked to"
    )
    text = f"{verb} {source_name} alert {', '.join(names[:5])} ({len(firing)} firing)"
    if group.summary:
        text += f": {group.summary}"
    moved_text = f"; {moved.text}" if moved is not None else ""  # the link's key event says the move
    return text[: 2000 - len(moved_text)] + moved_text


async def incident_for_fingerprints(session: AsyncSession, *, group_id: int, fingerprints: Sequence[str]) -> int | None:
    """An open incident another group already tracks for one of these firing alerts (same fingerprint)."""
    if not fingerprints:
        return None
    result = await session.exec(
        select(AlertGroup.incident_id)
        .join(AlertInstance, col(AlertInstance.group_id) == col(AlertGroup.id))
        .join(Incident, col(Incident.id) == col(AlertGroup.incident_id))
        .where(
            col(AlertGroup.id) != group_id,
            col(AlertInstance.fingerprint).in_(list(fingerprints)),
            col(AlertInstance.status) == "firing",
            col(Incident.status) != Status.RESOLVED,
        )
        .order_by(col(AlertGroup.incident_id))
        .limit(1)
    )
    return result.first()


async def groups_for_incident(session: AsyncSession, *, incident_id: int) -> list[AlertGroup]:
    result = await session.exec(select(AlertGroup).where(AlertGroup.incident_id == incident_id))
    return list(result.all())


async def bump_for_incident(session: AsyncSession, *, incident_id: int) -> list[int]:
    """The linked incident changed: mark all its groups pending (one UPDATE); their ids."""
    await session.exec(
        update(AlertGroup).where(col(AlertGroup.incident_id) == incident_id).values(revision=AlertGroup.revision + 1)
    )
    await session.commit()
    result = await session.exec(select(AlertGroup.id).where(AlertGroup.incident_id == incident_id))
    return [int(i) for i in result.all() if i is not None]


async def stale_declares(session: AsyncSession, *, stale_before: datetime, link_stale_before: datetime) -> list[int]:
    """Groups whose declare was claimed and never completed (the bot died mid-declare).

    Two windows: a claim that made no incident is stale soon (nothing is declared until it is
    recovered); one whose incident exists only waits for its link, which follows the channel setup.
    """
    claimed = col(AlertGroup.declare_state) == DeclareState.CLAIMED
    made = col(AlertGroup.incident_id).is_not(None)
    result = await session.exec(
        select(AlertGroup.id).where(
            claimed,
            or_(
                ~made & (col(AlertGroup.declare_claimed_at) < stale_before),
                made & (col(AlertGroup.declare_claimed_at) < link_stale_before),
            ),
        )
    )
    return [int(i) for i in result.all() if i is not None]
