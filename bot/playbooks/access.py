"""Who may press a run's buttons: a run id in a button is a hint, re-read and checked against the clicker.

A restricted playbook may be worked only by the incident's people in its roles (else the declarer).
"""

from __future__ import annotations

from bot.deps import Deps
from bot.exceptions import NotFound, PermissionDenied
from bot.incidents.models import Incident
from bot.ops.clicks import refused
from bot.playbooks.models import PlaybookRun
from bot.playbooks.schema import Playbook


async def visible_incident(deps: Deps, *, run_id: int, actor: str, message: tuple[str, str] | None = None) -> Incident:
    """The incident of a run, when `actor` may see it; a button's run id is a hint, not a fact.

    `message` (channel, ts) is where the click came from: a run's buttons live on its progress
    message only, so a click elsewhere naming this run is refused and audited.
    """
    async with deps.db.session() as session:
        run = await session.get(PlaybookRun, run_id)
        incident = await session.get(Incident, run.incident_id) if run is not None else None
    hidden = NotFound("This checklist is not one you can see; it may come from an old message.")
    if run is None or incident is None or not await deps.incident_access.can_see(person=actor, incident=incident):
        raise hidden
    if message is not None and run.progress_ts and message != (run.progress_channel, run.progress_ts):
        await refused(
            deps, actor=actor, what="step", claimed=run_id, reason="not on the run's checklist", incident_id=incident.id
        )
        raise hidden
    return incident


def allowed_people(playbook: Playbook, incident: Incident) -> set[str] | None:
    """Who may work a restricted playbook: holders of its roles, else the declarer. None: anyone."""
    if playbook.restricted is None:
        return None
    holders = {incident.role(role) for role in playbook.restricted.roles} - {None}
    return {h for h in holders if h} or {incident.declared_by}


def ensure_allowed(playbook: Playbook, incident: Incident, actor: str | None) -> None:
    """Raise PermissionDenied for someone outside a restricted playbook's roles."""
    allowed = allowed_people(playbook, incident)
    if allowed is None or actor in allowed:
        return
    assert playbook.restricted is not None
    roles = ", ".join(r.value for r in playbook.restricted.roles)
    note = f" {playbook.restricted.note.strip()}" if playbook.restricted.note.strip() else ""
    raise PermissionDenied(
        f"Only the incident's {roles} can work the {playbook.title} playbook (now: {PermissionDenied.PEOPLE}).{note}",
        people=sorted(allowed),
    )
