"""Declaring from alerts without a person: a rule's auto-declare, joining an incident by fingerprint,
and recovering a declare a dead process left claimed. `declare_and_link` is shared with the Declare button.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from functools import partial

from bot.alerts import claims, service
from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.views import incident_description
from bot.config import Severity
from bot.deps import Deps
from bot.incidents import flows as incident_flows
from bot.incidents.flows import Outcome

log = logging.getLogger(__name__)


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
            session, group_id=group.id, incident_id=existing, how="fingerprint", actor=group.source, now=now
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
    outcome = await declare_and_link(
        deps,
        group_id=group.id,
        source=group.source,
        how="auto",
        actor=group.source,
        back_to=DeclareState.WANTED,
        title=group.title or "Alert",
        severity=Severity(group.proposed_severity) if group.proposed_severity else None,
        service_name=group.proposed_service,
        playbook_id=group.proposed_playbook,
        description=incident_description(group, alerts),
    )
    log.info("alert group %s declared %s automatically (%s)", group.id, outcome.incident.ref, group.rule)


async def recover_declares(deps: Deps, *, now: datetime, stale_after: timedelta) -> None:
    """A declare claimed but never linked: link the incident it made, or let it be declared again."""
    async with deps.db.session() as session:
        stale = await claims.stale_declares(session, stale_before=now - stale_after)
    for group_id in stale:
        await _recover_one(deps, group_id=group_id, now=now, stale_after=stale_after)


async def _recover_one(deps: Deps, *, group_id: int, now: datetime, stale_after: timedelta) -> None:
    async with deps.db.session() as session:
        group = await service.get_group(session, group_id=group_id)
        if group.declare_claimed_at is None:
            return
        if group.incident_id is not None:  # the incident was made (it names itself on the group): link it
            await claims.link_incident(
                session, group_id=group_id, incident_id=group.incident_id, how="auto", actor=group.source, now=now
            )
            log.warning(
                "alert group %s: recovered the link to INC-%s after an interrupted declare", group_id, group.incident_id
            )
            return
        back = DeclareState.WANTED if group.rule else DeclareState.NONE
        if await claims.claim_declare(session, group_id=group_id, states=[], now=now, stale_before=now - stale_after):
            await claims.release_declare(session, group_id=group_id, back_to=back)
            await service.bump(session, group_id=group_id)
            log.warning("alert group %s: an interrupted declare is retried", group_id)


async def declare_and_link(
    deps: Deps,
    *,
    group_id: int,
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
    """With the declare claimed: declare the incident and link the group to it (a failure gives the claim back)."""
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
            also=partial(claims.hold_incident, group_id=group_id),
        )
    except Exception:
        async with deps.db.session() as session:
            await claims.release_declare(session, group_id=group_id, back_to=back_to)
        raise
    async with deps.db.session() as session:
        await claims.link_incident(
            session, group_id=group_id, incident_id=outcome.incident.id or 0, how=how, actor=actor, now=deps.clock.now()
        )
    deps.metrics.alerts_declared.labels(source=source, how=how).inc()
    return outcome
