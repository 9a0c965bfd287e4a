"""Declaring from alerts: a rule's auto-declare, the Declare button, joining an incident by fingerprint,
and recovering a declare a dead process left claimed.

A declare is claimed first (`claims.claim_declare`, stamped with its time) and the incident names the
group in its own INSERT's transaction only while that claim holds. So a claim that made no incident
can be recovered soon (`DECLARE_STALE`) without risking a second incident: a declarer that was only
slow finds its claim gone and its INSERT rolls back.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from sqlmodel import select

from bot.alerts import claims, service
from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.state import source_name
from bot.alerts.views import incident_description
from bot.config import Severity
from bot.deps import Deps
from bot.exceptions import InvalidState, NotFound
from bot.incidents import access
from bot.incidents import flows as incident_flows
from bot.incidents.flows import Outcome
from bot.incidents.models import Incident

log = logging.getLogger(__name__)


def _named(deps: Deps, source: str) -> str:
    """What this app's settings call the source (each app its own, as the alert card says)."""
    return source_name(source, sources=deps.settings.config.alerts.sources)


# A claim that made no incident: the declarer died between its claim and its INSERT (milliseconds
# apart), so nothing is declared for this alert until the recovery. As long as a group's sync lease
# (`flows.LEASE`), which holds the group through the same crash.
DECLARE_STALE = timedelta(minutes=2)
# An incident made and not yet linked: the link follows its channel setup, which Slack may pace for
# minutes in a storm; the incident and its pages go on meanwhile, only the group's link waits.
LINK_STALE = timedelta(minutes=10)


async def link_by_fingerprint(deps: Deps, group: AlertGroup, alerts: list[AlertInstance]) -> bool:
    """The same alert (fingerprint) already has an open incident through another group: join it."""
    assert group.id is not None
    async with deps.db.session() as session:
        existing = await claims.incident_for_fingerprints(
            session, group_id=group.id, fingerprints=[a.fingerprint for a in alerts if a.status == "firing"]
        )
    if existing is None:
        return False
    now = deps.clock.now()
    async with deps.db.session() as session:
        states = [DeclareState.NONE, DeclareState.WANTED]
        if not await claims.claim_declare(session, group_id=group.id, states=states, now=now):
            return False
        await claims.link_incident(
            session,
            group_id=group.id,
            incident_id=existing,
            how="fingerprint",
            actor=group.source,
            source_name=_named(deps, group.source),
            now=now,
        )
    deps.metrics.alerts_declared.labels(source=group.source, how="fingerprint").inc()
    log.info("alert group %s joins INC-%s (same alert fingerprint)", group.id, existing)
    return True


async def auto_declare(deps: Deps, group: AlertGroup, alerts: list[AlertInstance]) -> None:
    """A rule asked for an incident: declare one, unless a person or another replica got there first."""
    assert group.id is not None
    if await link_by_fingerprint(deps, group, alerts):
        return
    now = deps.clock.now()
    async with deps.db.session() as session:
        if not await claims.claim_declare(session, group_id=group.id, states=[DeclareState.WANTED], now=now):
            return  # a person or another replica is declaring it
    # Cancelled mid-declare (shutdown) stays claimed: the stale-declare recovery links what was made.
    try:
        outcome = await _auto_declare(deps, group, alerts, claimed_at=now)
    except InvalidState as exc:  # our claim was recovered while we were slow: the other declare stands
        log.warning("alert group %s: not declared here: %s", group.id, exc)
        return
    log.info("alert group %s declared %s automatically (%s)", group.id, outcome.incident.ref, group.rule)


async def _auto_declare(deps: Deps, group: AlertGroup, alerts: list[AlertInstance], *, claimed_at: datetime) -> Outcome:
    assert group.id is not None
    return await declare_and_link(
        deps,
        group_id=group.id,
        claimed_at=claimed_at,
        source=group.source,
        how="auto",
        actor=group.source,
        back_to=DeclareState.WANTED,
        title=group.title or "Alert",
        severity=Severity(group.proposed_severity) if group.proposed_severity else None,
        service_name=group.proposed_service,
        playbook_id=group.proposed_playbook,
        description=incident_description(group, alerts, source_name=_named(deps, group.source)),
    )


async def recover_declares(
    deps: Deps, *, now: datetime, stale_after: timedelta = DECLARE_STALE, link_after: timedelta = LINK_STALE
) -> None:
    """A declare claimed but never linked: link the incident it made, or let it be declared again."""
    async with deps.db.session() as session:
        stale = await claims.stale_declares(session, stale_before=now - stale_after, link_stale_before=now - link_after)
    for group_id in stale:
        await _recover_one(deps, group_id=group_id, now=now, stale_after=stale_after)


async def _recover_one(deps: Deps, *, group_id: int, now: datetime, stale_after: timedelta) -> None:
    async with deps.db.session() as session:
        group = await service.get_group(session, group_id=group_id)
        if group.declare_claimed_at is None:
            return
        if group.incident_id is not None:  # the incident was made (it names itself on the group): link it
            # As its declarer made it: a rule's declare is the sender's, a person's Declare their own.
            declared_by = (
                await session.exec(select(Incident.declared_by).where(Incident.id == group.incident_id))
            ).first() or group.source
            how = "auto" if declared_by == group.source else "button"
            await claims.link_incident(
                session,
                group_id=group_id,
                incident_id=group.incident_id,
                how=how,
                actor=declared_by,
                source_name=_named(deps, group.source),
                now=now,
            )
            log.warning(
                "alert group %s: recovered the link to INC-%s after an interrupted declare", group_id, group.incident_id
            )
            return
        back = DeclareState.WANTED if group.rule else DeclareState.NONE
        if await claims.claim_declare(session, group_id=group_id, states=[], now=now, stale_before=now - stale_after):
            await claims.release_declare(session, group_id=group_id, back_to=back, claimed_at=now)
            await service.bump(session, group_id=group_id)
            log.warning("alert group %s: an interrupted declare is retried", group_id)


async def declare_and_link(
    deps: Deps,
    *,
    group_id: int,
    claimed_at: datetime,
    source: str,
    how: str,
    actor: str,
    back_to: str,
    title: str,
    severity: Severity | None,
    service_name: str | None,
    playbook_id: str | None,
    description: str,
    private: bool = False,
) -> Outcome:
    """With the declare claimed at `claimed_at`: declare the incident and link the group to it.

    A failure gives the claim back; a claim the recovery took over meanwhile raises `InvalidState`
    and declares nothing (`claims.hold_incident`).
    """
    try:
        outcome = await incident_flows.declare(
            deps,
            title=title,
            declared_by=actor,
            severity=severity,
            service_name=service_name,
            playbook_id=playbook_id,
            description=description,
            private=private,
            also=partial(claims.hold_incident, group_id=group_id, claimed_at=claimed_at),
        )
    except Exception:
        async with deps.db.session() as session:
            await claims.release_declare(session, group_id=group_id, back_to=back_to, claimed_at=claimed_at)
        raise
    async with deps.db.session() as session:
        await claims.link_incident(
            session,
            group_id=group_id,
            incident_id=outcome.incident.id or 0,
            how=how,
            actor=actor,
            source_name=_named(deps, source),
            now=deps.clock.now(),
        )
    deps.metrics.alerts_declared.labels(source=source, how=how).inc()
    return outcome


async def declare_from_alert(
    deps: Deps,
    *,
    group_id: int,
    actor: str,
    title: str,
    severity: Severity | None,
    service_name: str | None,
    playbook_id: str | None,
    description: str = "",
    private: bool = False,
) -> Outcome:
    """A person pressed Declare on an alert: one incident per group, however many press it."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        group = await service.get_group(session, group_id=group_id)
        previous = group.declare_state
        # The claim also fails when the group is linked already; the re-read says which it was.
        claimed = await claims.claim_declare(
            session, group_id=group_id, states=[DeclareState.NONE, DeclareState.WANTED], now=now
        )
        if not claimed:
            group = await service.get_group(session, group_id=group_id)
    if not claimed:
        if group.incident_id is not None:
            try:  # its number only to those who may see it
                ref = (await access.find(deps, number=group.incident_id, person=actor)).ref
            except NotFound:
                ref = "an incident"
            raise InvalidState(f"This alert is already {ref}; nothing new was declared.")
        raise InvalidState("Someone is declaring an incident for this alert right now; look in the alerts channel.")
    outcome = await declare_and_link(
        deps,
        group_id=group_id,
        claimed_at=now,
        source=group.source,
        how="button",
        actor=actor,
        back_to=previous,
        title=title,
        severity=severity,
        service_name=service_name,
        playbook_id=playbook_id,
        description=description,
        private=private,
    )
    if deps.alerts is not None:
        deps.alerts.spawn(group_id)
    return outcome
