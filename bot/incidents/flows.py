"""Incident lifecycle: the database first, then the chat, then the other domains (through signals).

The row is always committed before any Slack call, so a Slack failure never loses an incident:
the failed step is recorded (timeline + `setup_error`) and `finish_setup` can run again; each of
its steps skips what is already done.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

from bot.config import Severity
from bot.deps import Deps
from bot.exceptions import BotError, ChatError, InvalidState
from bot.incidents import service, setup_rows, signal_work
from bot.incidents.models import ActionItem, Incident, IncidentCreate, Role, Status
from bot.incidents.ports import Notice
from bot.incidents.setup_steps import SetupLease, Steps, release_lease, run_steps
from bot.incidents.standing import refresh
from bot.signals import (
    IncidentAcknowledged,
    IncidentChannelReady,
    IncidentDeclared,
    IncidentResolved,
    IncidentSeverityChanged,
    IncidentStatusChanged,
    RoleAssigned,
)

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_SEVERITY = Severity.P2


@dataclass
class Outcome:
    """What a flow did, and what went wrong on the way (the user is told both)."""

    incident: Incident
    problems: list[str] = field(default_factory=list)
    changed: bool = True


def _playbook(deps: Deps, *, playbook_id: str | None, title: str, service_name: str | None) -> Any:
    """The playbook asked for, or the one that matches, when the playbooks domain is set up."""
    registry = deps.playbooks
    if registry is None:
        return None
    try:
        return registry.choose(explicit=playbook_id, title=title, service=service_name)
    except BotError:
        return None


async def declare(
    deps: Deps,
    *,
    title: str,
    declared_by: str,
    severity: Severity | None = None,
    service_name: str | None = None,
    playbook_id: str | None = None,
    description: str = "",
    private: bool = False,
    first: service.FirstWrite | None = None,
    also: service.AlsoWrite | None = None,
) -> Outcome:
    """`first` and `also`: the caller's writes that must commit with the incident row (see `service.create`)."""
    playbook = _playbook(deps, playbook_id=playbook_id, title=title, service_name=service_name)
    if severity is None:
        # Declared without one: the playbook's suggested severity, else the default.
        severity = getattr(playbook, "severity", None)
    # Private when asked for, when the playbook says so (security breach) or when every incident is.
    private = private or deps.settings.config.channels.private_incidents or bool(getattr(playbook, "private", False))
    data = IncidentCreate(
        title=title.strip(),
        severity=severity or DEFAULT_SEVERITY,
        service=service_name,
        playbook_id=playbook_id,
        description=description,
        declared_by=declared_by,
        private=private,
    )
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await service.create(session, data=data, now=now, claim_setup=True, first=first, also=also)
    log.info("declared %s", incident.ref, extra={"incident": incident.ref, "severity": str(incident.severity)})
    # Paging starts now, beside the channel setup: Slack may make the channel wait (tier 2).
    declared = IncidentDeclared(incident_id=incident.id or 0, actor=declared_by, severity=str(incident.severity))
    await deps.bus.notify(declared)
    try:
        async with deps.priority.later():
            outcome = await finish_setup(
                deps, incident_id=incident.id or 0, actor=declared_by, retry=False, claimed=(incident, now)
            )
    except Exception as exc:
        # The row exists: whatever broke (database blip, a bug), the user must not declare it again.
        log.exception("setting up %s failed", incident.ref)
        outcome = Outcome(incident=incident, problems=[f"setting it up failed ({type(exc).__name__})"])
    return outcome


async def finish_setup(
    deps: Deps,
    *,
    incident_id: int,
    actor: str,
    retry: bool = True,
    claimed: tuple[Incident, datetime] | None = None,
    by_hand: bool = False,
) -> Outcome:
    """Channel, invite, topic, pinned summary, announcement. Safe to run again after a failure.

    Steps that leave something behind (channel, summary, announcement) are skipped once their ID is
    saved; idempotent ones (invite, topic, pin) run every time. A lease in the row keeps two runs
    (two clicks on Retry, two replicas) from creating two channels. A `retry` may find the channel
    an earlier run made but could not save, and adopts it; the declaration's own run never looks.
    `claimed`: the incident and its lease's time, when the caller holds it (a declaration's row is born with it).
    """
    unreleased = deps.unreleased_setup_leases
    if claimed is None:
        held = deps.clock.now()
        async with deps.db.session() as session:  # the lease and the row as it was taken, in one UPDATE … RETURNING
            ours = unreleased.get(incident_id)
            if (incident := await setup_rows.take_setup(session, incident_id=incident_id, now=held, ours=ours)) is None:
                incident = await service.get(session, number=incident_id)
                raise InvalidState(f"Setup of {incident.ref} is already running; try again in a minute.")
        unreleased.pop(incident_id, None)
    else:
        incident, held = claimed
    lease = SetupLease(deps, incident_id=incident_id, held=held)
    keeper = asyncio.create_task(lease.keep(), name=f"keep the setup lease of INC-{incident_id}")
    steps = Steps(deps, incident_id)
    released = False
    try:
        incident = await run_steps(steps, incident, actor=actor, adopt=retry)
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        # The last steps' record (the summary, the announcement, the problems) and the lease's end: one write.
        incident = await steps.save(release=lease.held, **steps.last)
        released = True
        if steps.shown is not None and setup_rows.moved_on(steps.shown, incident):
            # Changed while the setup posted what it had read: the flows that changed it could not show
            # it in messages not recorded yet (the summary, the announcement), nor in a topic set after.
            steps.problems += await refresh(deps, incident_id=incident_id)
    finally:
        keeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await keeper
        if not released:
            await release_lease(deps, incident_id=incident_id, held=lease.held)
    outcome = Outcome(incident=incident, problems=steps.problems)
    if outcome.incident.channel_id:
        # After the lease is released: pages sent meanwhile left their channel mention to this signal.
        # Its handlers do the work themselves: in a task, so the reply does not wait for it.
        ready = channel_ready(deps, incident_id=incident_id, actor=actor, by_hand=by_hand)
        deps.background.spawn(ready, f"INC-{incident_id} ready")
    return outcome


async def channel_ready(deps: Deps, *, incident_id: int, actor: str | None, by_hand: bool = False) -> None:
    """Publish IncidentChannelReady, then note its work done; a crash or a failed handler: the sweep redoes it."""
    await signal_work.deliver(deps, IncidentChannelReady(incident_id=incident_id, actor=actor), by_hand=by_hand)


async def _notice(deps: Deps, incident: Incident, notice: Notice) -> list[str]:
    if not incident.channel_id:
        return []
    try:
        await deps.incident_chat.post_notice(incident=incident, notice=notice)
    except ChatError as exc:
        return [f"posting in the channel failed ({exc.code or exc})"]
    return []


async def update_status(deps: Deps, *, incident_id: int, status: Status, message: str, actor: str) -> Outcome:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        old = await service.set_status(
            session, incident=incident, status=status, message=message, actor=actor, now=deps.clock.now()
        )
    problems = await _notice(
        deps, incident, Notice(kind="status", actor=actor, text=message, detail={"old": str(old), "new": str(status)})
    )
    problems += await refresh(deps, incident_id=incident_id)
    await deps.bus.notify(IncidentStatusChanged(incident_id=incident_id, actor=actor, old=str(old), new=str(status)))
    return Outcome(incident=incident, problems=problems, changed=old != status)


async def change_severity(deps: Deps, *, incident_id: int, severity: Severity, actor: str) -> Outcome:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        old = await service.set_severity(
            session, incident=incident, severity=severity, actor=actor, now=deps.clock.now()
        )
    problems = await _notice(
        deps, incident, Notice(kind="severity", actor=actor, detail={"old": str(old), "new": str(severity)})
    )
    problems += await refresh(deps, incident_id=incident_id)
    await deps.bus.notify(
        IncidentSeverityChanged(incident_id=incident_id, actor=actor, old=str(old), new=str(severity))
    )
    return Outcome(incident=incident, problems=problems)


async def assign_role(deps: Deps, *, incident_id: int, role: Role, user: str, actor: str) -> Outcome:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        await service.assign_role(session, incident=incident, role=role, user=user, actor=actor, now=deps.clock.now())
    problems: list[str] = []
    if incident.channel_id:
        try:
            await deps.incident_chat.invite(channel_id=incident.channel_id, users=[user])
        except ChatError as exc:
            problems.append(f"inviting <@{user}> failed ({exc.code or exc})")
        deps.incident_access.forget(channel_id=incident.channel_id)
    problems += await _notice(
        deps, incident, Notice(kind="role", actor=actor, detail={"role": role.value, "user": user})
    )
    problems += await refresh(deps, incident_id=incident_id)
    await deps.bus.notify(RoleAssigned(incident_id=incident_id, actor=actor, role=role.value, user=user))
    return Outcome(incident=incident, problems=problems)


async def acknowledge(deps: Deps, *, incident_id: int, actor: str, for_whom: Sequence[str] = ()) -> Outcome:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        first = await service.acknowledge(
            session, incident=incident, actor=actor, now=deps.clock.now(), for_whom=for_whom
        )
    problems: list[str] = []
    if first:
        problems += await _notice(deps, incident, Notice(kind="ack", actor=actor))
        problems += await refresh(deps, incident_id=incident_id)
    await deps.bus.notify(IncidentAcknowledged(incident_id=incident_id, actor=actor, first=first))
    return Outcome(incident=incident, problems=problems, changed=first)


async def resolve(deps: Deps, *, incident_id: int, summary: str, actor: str) -> Outcome:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        incident = await service.resolve(session, incident=incident, summary=summary, actor=actor, now=deps.clock.now())
    problems = await _notice(deps, incident, Notice(kind="resolved", actor=actor, text=summary))
    problems += await refresh(deps, incident_id=incident_id)
    # Its handlers do the work themselves: in a task, so the reply does not wait for it.
    deps.background.spawn(resolved(deps, incident_id=incident_id, actor=actor), f"INC-{incident_id} resolved")
    return Outcome(incident=incident, problems=problems)


async def resolved(deps: Deps, *, incident_id: int, actor: str | None) -> None:
    """Publish IncidentResolved, then note its work done; a crash or a failed handler: the sweep redoes it."""
    await signal_work.deliver(deps, IncidentResolved(incident_id=incident_id, actor=actor))


async def add_note(deps: Deps, *, incident_id: int, text: str, actor: str) -> Outcome:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        await service.add_note(session, incident=incident, text=text, actor=actor, now=deps.clock.now())
    return Outcome(incident=incident)


async def add_action_item(deps: Deps, *, incident_id: int, text: str, owner: str | None, actor: str) -> ActionItem:
    async with deps.db.session() as session:
        incident = await service.get(session, number=incident_id)
        item = await service.add_action_item(
            session, incident=incident, text=text, owner=owner, actor=actor, now=deps.clock.now()
        )
    detail = {"owner": owner, "item_id": item.id, "offer_issue": deps.issue_tracker is not None}
    await _notice(deps, incident, Notice(kind="action_item", actor=actor, text=text, detail=detail))
    return item
