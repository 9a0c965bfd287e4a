"""Publishing, the resolve hook, reminders to publish, and the Statuspage outbox (the database first).

A publish is committed (update, timeline event, outbox row) before anything is told to Slack or
sent to Statuspage, so neither being down loses it. The public page is rebuilt right after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.clock import utc
from bot.config import Severity
from bot.exceptions import ChatError, InvalidState, NotFound, UsageError
from bot.incidents import service as incidents
from bot.incidents.models import Incident, Status
from bot.statuspage import service, timers
from bot.statuspage.atlassian import IncidentChange, Statuspage, StatuspageError
from bot.statuspage.models import ComponentStatus, Impact, PublicReminder, PublicUpdate, StatuspageSync
from bot.statuspage.service import Draft
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.statuspage.runtime import StatusPage

log = logging.getLogger(__name__)

USAGE = "/incident publish [minor|major|critical] <public message>"
MAX_MESSAGE = 3000
MAX_TITLE = 200
SYNC_BACKOFF = (timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5))
SYNC_MAX_BACKOFF = timedelta(minutes=15)
SYNC_LEASE = timedelta(minutes=5)  # paced calls with 420/429 retries can take a while


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


async def _publishable(deps: Deps, *, incident_id: int, actor: str) -> Incident:
    async with deps.db.session() as session:
        incident = await incidents.get(session, number=incident_id)
    if not await deps.incident_access.can_see(person=actor, incident=incident):
        raise NotFound(f"There is no incident INC-{incident_id} that you can see.")
    if incident.private:
        raise InvalidState(f"{incident.ref} is private: private incidents never go on the status page.")
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
    return await _after_publish(deps, incident, update)


async def _after_publish(deps: Deps, incident: Incident, update: PublicUpdate) -> Published:
    page = page_of(deps)
    problems = []
    try:
        await page.chat.post_published(incident=incident, update=update)
    except ChatError as exc:
        problems.append(f"telling the channel failed ({exc.code or exc})")
    await page.refresh()
    if page.syncing:
        deps.background.spawn(page.sync_due(), f"send INC-{incident.id}'s update to Statuspage")
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
        update = await service.add_resolution(
            session, incident=incident, draft=draft, actor=actor or "bot", now=now, sync=page_of(deps).syncing
        )
    return None if update is None else await _after_publish(deps, incident, update)


# --- reminders to publish ------------------------------------------------------------------


def wants_reminders(deps: Deps, incident: Incident) -> bool:
    severities = deps.settings.config.reminders.status_update_severities
    return incident.is_open and not incident.private and Severity(incident.severity) in severities


async def plan_reminder(deps: Deps, *, incident_id: int) -> PublicReminder | None:
    page = page_of(deps)
    now = deps.clock.now()
    async with deps.db.session() as session:
        incident = await incidents.get(session, number=incident_id)
        if not wants_reminders(deps, incident):
            return None
        last = await service.last_update(session, incident_id=incident_id)
        basis = utc(last.published_at) if last else utc(incident.declared_at)
        row = await service.plan_reminder(
            session, incident_id=incident_id, due_at=max(basis + page.remind_every, now), now=now
        )
    page.wake_at(row.due_at)
    return row


async def send_reminder(deps: Deps, *, reminder_id: int) -> bool:
    """Claim, re-check (resolved? published since?), post with the button, plan the next one."""
    page = page_of(deps)
    token = timers.new_token()
    now = deps.clock.now()
    async with deps.db.session() as session:
        row = await timers.claim(session, model=PublicReminder, row_id=reminder_id, token=token, now=now)
        if row is None:
            return False
        incident = await incidents.get(session, number=row.incident_id)
        if not wants_reminders(deps, incident):
            await timers.cancel(
                session, model=PublicReminder, row_id=reminder_id, token=token, now=now, reason="not wanted now"
            )
            return False
        last = await service.last_update(session, incident_id=incident.id or 0)
        basis = utc(last.published_at) if last else utc(incident.declared_at)
        if basis + page.remind_every > now + timedelta(seconds=1):
            await service.defer_reminder(
                session, reminder_id=reminder_id, token=token, due_at=basis + page.remind_every
            )
            page.wake_at(basis + page.remind_every)
            return False
    mention = [u for u in (incident.comms or incident.commander,) if u]
    try:
        await page.chat.post_reminder(incident=incident, since=now - basis, mention=mention)
    except ChatError as exc:
        async with deps.db.session() as session:
            await timers.release(
                session,
                model=PublicReminder,
                row_id=reminder_id,
                token=token,
                retry_at=now + timedelta(minutes=1),
                error=str(exc),
            )
        page.wake_at(now + timedelta(minutes=1))
        return False
    async with deps.db.session() as session:
        if (
            await timers.mark_sent(session, model=PublicReminder, row_id=reminder_id, token=token, now=deps.clock.now())
            is None
        ):
            return False
        await timeline.record(
            session,
            incident_id=incident.id or 0,
            at=deps.clock.now(),
            text="Reminded the channel to publish a public update",
            payload=events.ReminderSent(kind=Kind.PUBLIC_UPDATE, reminder_id=reminder_id, seq=row.seq),
        )
        nxt = await service.plan_reminder(
            session, incident_id=incident.id or 0, due_at=now + page.remind_every, now=now
        )
    page.wake_at(nxt.due_at)
    return True


# --- the Statuspage outbox -----------------------------------------------------------------


def backoff(attempts: int) -> timedelta:
    return SYNC_BACKOFF[attempts - 1] if 0 < attempts <= len(SYNC_BACKOFF) else SYNC_MAX_BACKOFF


async def _change(deps: Deps, update: PublicUpdate) -> IncidentChange:
    """The update as Statuspage takes it: each component this incident touched, no better than others say."""
    page = page_of(deps)
    async with deps.db.session() as session:
        history = [
            u for u in await service.updates(session, incident_id=update.incident_id) if (u.id or 0) <= (update.id or 0)
        ]
        others = await service.open_component_statuses(session, besides=update.incident_id)
    touched = {c for u in history for c in u.components}
    ok = ComponentStatus.OPERATIONAL  # the components are the page's: another open incident may hold one down
    statuses: dict[str, str] = {}
    for component in sorted(touched):
        status = max(update.status_of(component), others.get(component, ok), key=lambda s: s.rank)
        for component_id in page.statuspage_ids(component):
            if statuses.get(component_id) is None or ComponentStatus(statuses[component_id]).rank < status.rank:
                statuses[component_id] = status.value
    return IncidentChange(
        name=update.title, status=update.status, body=update.message, impact=update.impact, components=statuses
    )


async def sync_one(deps: Deps, *, row_id: int) -> bool:
    """Send one outbox row to Statuspage (create the incident there on the first); retried on failure."""
    page = page_of(deps)
    client = page.statuspage
    assert client is not None
    token = timers.new_token()
    async with deps.db.session() as session:
        row = await timers.claim(
            session, model=StatuspageSync, row_id=row_id, token=token, now=deps.clock.now(), lease=SYNC_LEASE
        )
        if row is None:
            return False
        update = await session.get(PublicUpdate, row.update_id)
        incident = await incidents.get(session, number=row.incident_id)
        external = await service.external_id(session, incident_id=row.incident_id)
        if incident.private:  # made private after it was published: nothing more goes out
            now = deps.clock.now()
            await timers.cancel(session, model=StatuspageSync, row_id=row_id, token=token, now=now, reason="private")
            return False
    assert update is not None
    try:
        change = await _change(deps, update)
        if external is None:
            await _create_once(deps, client, row, incident, change)
        else:
            await client.update_incident(external, change)
    except StatuspageError as exc:
        await _sync_failed(deps, row, token, incident, exc)
        return False
    async with deps.db.session() as session:
        await timers.mark_sent(session, model=StatuspageSync, row_id=row_id, token=token, now=deps.clock.now())
    if row.told_failure:
        await timeline.record_now(
            deps,
            incident_id=incident.id or 0,
            text="Statuspage is up to date again",
            payload=events.StatuspageSyncEvent(),
        )
        try:
            await page.chat.post_sync_recovered(incident=incident)
        except ChatError as exc:
            log.warning("could not tell %s that Statuspage caught up: %s", incident.ref, exc)
    return True


def marker_of(incident: Incident) -> str:
    """What the incident is known by at Statuspage before its id is stored (its metadata): ours, per incident."""
    return f"{incident.ref}@{int(utc(incident.declared_at).timestamp())}"


async def _create_once(
    deps: Deps, client: Statuspage, row: StatuspageSync, incident: Incident, change: IncidentChange
) -> None:
    """Create the incident there, unless an earlier try of this row did and its answer was lost (a
    timeout, a 5xx, a crash before the id was stored): then it is among the page's unresolved
    incidents with our marker, this update is already on it, and it is only recorded."""
    marker = marker_of(incident)
    external = await client.find_unresolved(marker=marker) if row.attempts > 1 else None
    if external is not None:
        log.warning("%s was on Statuspage already (an earlier create's answer was lost)", incident.ref)
    else:
        external = await client.create_incident(change, marker=marker)
    async with deps.db.session() as session:
        await service.save_external_id(session, incident_id=row.incident_id, external=external, now=deps.clock.now())


async def _sync_failed(deps: Deps, row: StatuspageSync, token: str, incident: Incident, exc: StatuspageError) -> None:
    page = page_of(deps)
    wait = backoff(row.attempts)
    retry_at = deps.clock.now() + wait
    log.warning("Statuspage sync of %s failed (%s); retrying in %s", incident.ref, exc, wait)
    async with deps.db.session() as session:
        await timers.release(
            session,
            model=StatuspageSync,
            row_id=row.id or 0,
            token=token,
            retry_at=retry_at,
            error=str(exc),
            told_failure=True,
        )
    page.wake_at(retry_at)
    if row.told_failure:
        return
    await timeline.record_now(
        deps,
        incident_id=incident.id or 0,
        text=f"Statuspage sync failed: {exc}",
        payload=events.StatuspageSyncEvent(update_id=row.update_id, status=exc.status),
    )
    try:
        await page.chat.post_sync_problem(incident=incident, error=str(exc), retry_in=wait)
    except ChatError as chat_exc:
        log.warning("could not tell %s that Statuspage failed: %s", incident.ref, chat_exc)
