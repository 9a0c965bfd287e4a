"""Publishing the post-mortem (database + chat) and answering stats; flows take `deps`. How a draft is
shared in the channel exactly once is sharing.py's."""

from __future__ import annotations

from bot.deps import Deps
from bot.exceptions import InvalidState
from bot.followups import flows as followups
from bot.incidents.models import Incident
from bot.postmortem import service, sharing
from bot.postmortem import stats as stats_service
from bot.postmortem.data import PostmortemData
from bot.postmortem.service import MAX_NAME_LOOKUPS as MAX_NAME_LOOKUPS
from bot.postmortem.service import people as people
from bot.postmortem.sharing import Published as Published
from bot.timeline import events
from bot.timeline import service as timeline


async def publish(deps: Deps, *, incident_id: int, actor: str | None, trigger: str) -> Published:
    """Build, render and share the draft in the incident channel, and put that on the timeline."""
    return await sharing.share(deps, await _build(deps, incident_id=incident_id), actor=actor, trigger=trigger)


async def publish_after_resolve(deps: Deps, *, incident_id: int, actor: str | None) -> Published | None:
    """The automatic draft on resolve, shared at most once (`sharing.share_after_resolve`). A draft that
    cannot be built is reported in the channel and on the timeline, never raised."""
    try:
        data = await _build(deps, incident_id=incident_id)
    except Exception as exc:
        await sharing.not_shared(deps, incident_id=incident_id, exc=exc)
        return None
    return await sharing.share_after_resolve(deps, data, actor=actor)


async def _build(deps: Deps, *, incident_id: int) -> PostmortemData:
    await followups.refresh_quietly(deps, incident_id=incident_id)  # a closed issue shows its follow-up done
    async with deps.db.session() as session:
        return await service.build(session, incident_id=incident_id, now=deps.clock.now())


async def mark_finished(deps: Deps, *, incident_id: int, actor: str) -> None:
    """The escalation reminder stops chasing once this event exists, so only a resolved incident's
    post-mortem can be finished: marked while open, it would silence the chase before it was written."""
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is not None and incident.is_open:
            raise InvalidState(
                f"{incident.ref} is still open: its post-mortem can be finished once it is resolved "
                "(`/incident resolve [summary]`)."
            )
        await timeline.record(
            session,
            incident_id=incident_id,
            at=deps.clock.now(),
            actor=actor,
            text="post-mortem marked finished",
            payload=events.PostmortemEvent(finished=True),
        )


async def counted(deps: Deps, *, person: str, incidents: list[Incident]) -> list[Incident]:
    """The incidents whose figures `person` is given. A full member counts every one (a private one
    they cannot see without its title or service); a guest only those `can_see` lets them see, as
    Slack shows a guest only their channels."""
    if not await deps.incident_access.is_guest(person=person):
        return incidents
    return await deps.incident_access.visible(person=person, incidents=incidents)


async def stats(deps: Deps, *, days: int, person: str) -> stats_service.Stats:
    now = deps.clock.now()
    only: set[int] | None = None
    if await deps.incident_access.is_guest(person=person):  # before the session: it may ask Slack
        async with deps.db.session() as session:
            rows = await stats_service.declared_in(session, now=now, days=days)
        only = {i.id or 0 for i in await counted(deps, person=person, incidents=rows)}
    async with deps.db.session() as session:
        return await stats_service.compute(session, now=now, days=days, only=only)
