"""Declaring from an alert (its button, or `declare: auto`) and resolving from one: one incident per group."""

from __future__ import annotations

from bot.alerts import service
from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.config import Severity
from bot.deps import Deps
from bot.exceptions import InvalidState, NotFound
from bot.incidents import access
from bot.incidents import flows as incident_flows
from bot.incidents.flows import Outcome
from bot.observability import metrics_of


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
        )
    except Exception:
        async with deps.db.session() as session:
            await service.release_declare(session, group_id=group_id, back_to=back_to)
        raise
    async with deps.db.session() as session:
        await service.link_incident(
            session, group_id=group_id, incident_id=outcome.incident.id or 0, how=how, actor=actor, now=deps.clock.now()
        )
    metrics_of(deps).alerts_declared.labels(source=source, how=how).inc()
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
        claimed = await service.claim_declare(
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
    processor = deps.alerts
    if processor is not None:
        processor.spawn(group_id)
    return outcome


async def resolve_from_alert(deps: Deps, *, incident_id: int, actor: str) -> Outcome:
    """The Resolve button on an 'alert cleared' message, by someone who can see the incident."""
    incident = await access.find(deps, number=incident_id, person=actor)
    async with deps.db.session() as session:
        if not incident.is_open:
            raise InvalidState(f"{incident.ref} is resolved already.")
        groups = await service.groups_for_incident(session, incident_id=incident_id)
    names = sorted({g.title.split(":")[0] for g in groups if g.title}) or ["the alert"]
    summary = f"Resolved after the alert cleared ({', '.join(names[:3])})."
    return await incident_flows.resolve(deps, incident_id=incident_id, summary=summary, actor=actor)


async def proposal_modal_values(deps: Deps, *, group_id: int) -> tuple[AlertGroup, list[AlertInstance]]:
    async with deps.db.session() as session:
        group = await service.get_group(session, group_id=group_id)
        alerts = await service.instances(session, group_id=group_id)
    return group, alerts
