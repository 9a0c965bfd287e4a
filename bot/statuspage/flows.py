"""Publishing, the resolve hook, planning reminders to publish (`reminding` sends them), and the Statuspage outbox.

A publish is committed (update, timeline event, outbox row) before anything is told to Slack or
sent to Statuspage, so neither being down loses it. The public page is rebuilt right after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import Severity
from bot.exceptions import ChatError, InvalidState, UsageError
from bot.incidents import access
from bot.incidents import service as incidents
from bot.incidents.models import Incident, Status
from bot.statuspage import service
from bot.statuspage.models import DELETED_THERE, Impact, PublicReminder, PublicUpdate, StatuspageSync
from bot.statuspage.service import Draft

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.statuspage.runtime import StatusPage

log = logging.getLogger(__name__)

USAGE = "/incident publish [minor|major|critical|edit] <public message>"
MAX_MESSAGE = 3000
MAX_TITLE = 200


@dataclass
class Published:
    incident: Incident
    update: PublicUpdate
    problems: list[str] = field(default_factory=list)


def page_of(deps: Deps) -> StatusPage:
    if deps.status_page is None:
        raise InvalidState("The status page is not set up: add a `status_page:` section to bot.yml.")
    return deps.status_page


def default_title(page: StatusPage, components: list[str], impact: Impact) -> str:
    """A public name that says nothing internal: what is affected and how badly."""
    what = ", ".join(components) if components else page.config.title
    how = {"none": "Notice", "minor": "Degraded performance", "major": "Partial outage", "critical": "Major outage"}
    return f"{how[impact.value]}: {what}"[:MAX_TITLE]


async def draft_for(
    deps: Deps,
    *,
    incident: Incident,
    last: PublicUpdate | None,
    message: str,
    impact: Impact | None,
    components: list[str] | None,
    title: str | None,
) -> Draft:
    """Settle the defaults: the last update's impact, components and name, else ones from the incident."""
    page = page_of(deps)
    if components is not None:
        unknown = [c for c in components if c not in page.config.components]
        if unknown:
            known = ", ".join(page.config.components) or "none configured"
            raise UsageError(f"Unknown status page component {unknown[0]!r}. Components: {known}.", usage=USAGE)
    chosen_impact = impact or (Impact(last.impact) if last else Impact.for_severity(incident.severity))
    chosen = components if components is not None else (last.components if last else page.components_of(incident))
    name = (title or "").strip() or (last.title if last else default_title(page, chosen, chosen_impact))
    return Draft(
        title=name[:MAX_TITLE],
        status=str(incident.status),
        impact=chosen_impact.value,
        components=list(chosen),
        message=message,
    )


@dataclass(frozen=True)
class Prefill:
    """What the *Publish update* form starts with: the last public update, or defaults from the incident."""

    incident: Incident
    components: list[str]
    draft: Draft


async def public_one(deps: Deps, *, incident_id: int, actor: str) -> Incident:
    """The incident as stored, when `actor` can see it and it may be public at all (publish, edit, withdraw)."""
    # The access check every surface shares, with its one answer for "missing" and "not yours to see".
    incident = await access.find(deps, number=incident_id, person=actor)
    if incident.private:
        raise InvalidState(f"{incident.ref} is private: private incidents never go on the status page.")
    return incident


async def _publishable(deps: Deps, *, incident_id: int, actor: str) -> Incident:
    incident = await public_one(deps, incident_id=incident_id, actor=actor)
    if not incident.is_open:
        raise InvalidState(f"{incident.ref} is resolved; resolving it published the public resolution.")
    return incident


async def prefill(deps: Deps, *, incident_id: int, actor: str) -> Prefill:
    page = page_of(deps)
    incident = await _publishable(deps, incident_id=incident_id, actor=actor)
    async with deps.db.session() as session:
        last = await service.last_update(session, incident_id=incident_id)
    draft = await draft_for(
        deps,
        incident=incident,
        last=last,
        message=last.message if last else "",
        impact=None,
        components=None,
        title=None,
    )
    return Prefill(incident=incident, components=list(page.config.components), draft=draft)


async def publish(
    deps: Deps,
    *,
    incident_id: int,
    actor: str,
    message: str,
    impact: Impact | None = None,
    components: list[str] | None = None,
    title: str | None = None,
) -> Published:
    """Publish one update with the incident's current status; the first one makes the incident public."""
    page = page_of(deps)
    message = message.strip()
    if not message:
        raise UsageError(
            "Write what the public should read, e.g. `/incident publish We are investigating errors at checkout`.",
            usage=USAGE,
        )
    if len(message) > MAX_MESSAGE:
        raise UsageError(f"The message is {len(message)} characters; keep it under {MAX_MESSAGE}.", usage=USAGE)
    incident = await _publishable(deps, incident_id=incident_id, actor=actor)
    async with deps.db.session() as session:
        last = await service.last_update(session, incident_id=incident_id)
        draft = await draft_for(
            deps, incident=incident, last=last, message=message, impact=impact, components=components, title=title
        )
        update = await service.add_update(
            session, incident=incident, draft=draft, actor=actor, now=deps.clock.now(), sync=page.syncing
        )
    log.info("published %s to the status page", incident.ref, extra={"incident": incident.ref})
    # Public (again, after a withdrawal): the reminders a withdrawal stopped start again (else a no-op).
    deps.background.spawn(plan_reminder(deps, incident_id=incident_id), f"plan INC-{incident_id}'s publish reminder")
    return await _after_publish(deps, incident, update)


async def _after_publish(deps: Deps, incident: Incident, update: PublicUpdate) -> Published:
    """The public first: Slack throttles a busy incident channel in an outage, and its post can take minutes
    of retries that the page and Statuspage must not wait for."""
    page = page_of(deps)
    problems = []
    await page.refresh()
    if page.syncing:
        deps.background.spawn(page.sync_due(), f"send INC-{incident.id}'s update to Statuspage")
    try:
        await page.chat.post_published(incident=incident, update=update)
    except ChatError as exc:
        problems.append(f"telling the channel failed ({exc.code or exc})")
    return Published(incident=incident, update=update, problems=problems)


async def incident_resolved(deps: Deps, *, incident_id: int, actor: str | None) -> Published | None:
    """Publish "resolved" with the last public message, if ever public: on the resolve, or the sweep's catch-up."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        await service.cancel_reminders(session, incident_id=incident_id, now=now, reason="incident resolved")
        incident = await incidents.get(session, number=incident_id)
        last = await service.last_update(session, incident_id=incident_id)
        if incident.private or last is None or last.status == Status.RESOLVED:
            return None
        draft = Draft(
            title=last.title,
            status=Status.RESOLVED.value,
            impact=last.impact,
            components=list(last.components),
            message=last.message,
        )
        sync = page_of(deps).syncing and not await deleted_there(session, incident_id=incident_id)
        update = await service.add_resolution(
            session, incident=incident, draft=draft, actor=actor or "bot", now=now, sync=sync
        )
    return None if update is None else await _after_publish(deps, incident, update)


async def deleted_there(session: AsyncSession, *, incident_id: int) -> bool:
    """Its incident on Statuspage was deleted there by hand and nobody published since (`gone.py`)."""
    query = (
        select(StatuspageSync.cancel_reason)
        .where(col(StatuspageSync.incident_id) == incident_id)
        .order_by(col(StatuspageSync.id).desc())
        .limit(1)
    )
    reason = (await session.exec(query)).first()
    return reason is not None and reason.startswith(DELETED_THERE)


# --- reminders to publish ------------------------------------------------------------------


async def wants_reminders(deps: Deps, session: AsyncSession, incident: Incident) -> bool:
    """Open P1/P2 (as configured) public incidents, unless withdrawn from the page: whoever withdrew it
    decided the public should not hear of it. Publishing again starts the reminders again."""
    severities = deps.settings.config.reminders.status_update_severities
    if not incident.is_open or incident.private or Severity(incident.severity) not in severities:
        return False
    return not await service.withdrawn(session, incident_id=incident.id or 0)


async def plan_reminder(deps: Deps, *, incident_id: int) -> PublicReminder | None:
    page = page_of(deps)
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await incidents.get(session, number=incident_id)
        if not await wants_reminders(deps, session, incident):
            return None
        last = await service.last_update(session, incident_id=incident_id)
        basis = utc(last.published_at) if last else utc(incident.declared_at)
        row = await service.plan_reminder(
            session, incident_id=incident_id, due_at=max(basis + page.remind_every, now), now=now
        )
    page.wake_at(row.due_at)
    return row
