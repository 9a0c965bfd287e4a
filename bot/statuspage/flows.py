"""Publishing, the resolve hook, reminders to publish, and the Statuspage outbox (the database first).

A publish is committed (update, timeline event, outbox row) before anything is told to Slack or
sent to Statuspage, so neither being down loses it. The public page is rebuilt right after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import Severity
from bot.escalation.retries import posted_before, posted_on_last
from bot.exceptions import ChatError, InvalidState, UsageError, unanswered
from bot.incidents import access
from bot.incidents import service as incidents
from bot.incidents.models import Incident, Status
from bot.statuspage import service, timers
from bot.statuspage.models import DELETED_THERE, Impact, PublicReminder, PublicUpdate, StatuspageSync
from bot.statuspage.service import Draft
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind

if TYPE_CHECKING:
    from bot.deps import Deps
    from bot.statuspage.runtime import StatusPage

log = logging.getLogger(__name__)

USAGE = "/incident publish [minor|major|critical|edit] <public message>"
MAX_MESSAGE = 3000
MAX_TITLE = 200
# Attempts at one reminder to publish before it is given up for the next (status reminders give up after 3).
REMINDER_ATTEMPTS = 3


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


async def send_reminder(deps: Deps, *, reminder_id: int) -> bool:
    """Claim, re-check (resolved? published since?), post with the button, plan the next one.

    The post names the reminder (message metadata): a retry after an attempt whose outcome is unknown (the
    answer lost, `fatal_error`, a crash before it was recorded) looks for it in the channel first and records
    it when found, as escalation's reminders do (`bot/escalation/leases.py`); so does the last attempt, when
    its own answer was lost, before giving up. After an answer of Slack's own it does not look: nothing was
    posted."""
    token = timers.new_token()
    now = deps.clock.now()
    claimed = await _claim_reminder(deps, reminder_id=reminder_id, token=token, now=now)
    if claimed is None:
        return False
    row, incident, basis = claimed
    try:
        posted = await _post_once(deps, row=row, token=token, incident=incident, since=now - basis)
    except ChatError as exc:
        await _reminder_failed(deps, row=row, token=token, now=now, exc=exc)
        return False
    if not posted:
        await _no_channel(deps, row=row, token=token, now=now)
        return False
    return await _reminded(deps, row=row, token=token, now=now)


async def _claim_reminder(
    deps: Deps, *, reminder_id: int, token: str, now: datetime
) -> tuple[PublicReminder, Incident, datetime] | None:
    """The claimed row, its incident and what it is late from; None when it is not to go out now."""
    page = page_of(deps)
    async with deps.db.session() as session:
        row = await timers.claim(session, model=PublicReminder, row_id=reminder_id, token=token, now=now)
        if row is None:
            return None
        incident = await incidents.get(session, number=row.incident_id)
        if not await wants_reminders(deps, session, incident):
            await timers.cancel(
                session, model=PublicReminder, row_id=reminder_id, token=token, now=now, reason="not wanted now"
            )
            return None
        last = await service.last_update(session, incident_id=incident.id or 0)
        basis = utc(last.published_at) if last else utc(incident.declared_at)
        if basis + page.remind_every > now + timedelta(seconds=1):
            await service.defer_reminder(
                session, reminder_id=reminder_id, token=token, due_at=basis + page.remind_every
            )
            page.wake_at(basis + page.remind_every)
            return None
    return row, incident, basis


async def _post_once(deps: Deps, *, row: PublicReminder, token: str, incident: Incident, since: timedelta) -> bool:
    """Post it, unless the last attempt, whose outcome is unknown, did (then True: it is there)."""
    chat = page_of(deps).chat
    last = row.error
    if last is not None:
        # This attempt's outcome is unknown until recorded: a crash during it must leave no answer of Slack's.
        async with deps.db.session() as session:
            await timers.forget_error(session, model=PublicReminder, row_id=row.id or 0, token=token)
    look = partial(chat.reminder_posted, incident=incident, reminder_id=row.id or 0, since=utc(row.due_at))
    what = f"reminder to publish {row.id} of {incident.ref}"
    if row.attempts > 1 and unanswered(last) and await posted_before(look(), what):
        return True
    mention = [u for u in (incident.comms or incident.commander,) if u]
    try:
        return await chat.post_reminder(incident=incident, since=since, mention=mention, reminder_id=row.id or 0)
    except ChatError as exc:
        # The last attempt, its answer lost: Slack may have posted it. Found, it is sent, not given up.
        code, attempts = exc.code or str(exc), row.attempts
        if not await posted_on_last(attempts=attempts, max_attempts=REMINDER_ATTEMPTS, code=code, look=look, what=what):
            raise
        return True


async def _reminded(deps: Deps, *, row: PublicReminder, token: str, now: datetime) -> bool:
    """Recorded as sent (if still ours), on the timeline, and the next one planned an interval on."""
    page = page_of(deps)
    reminder_id = row.id or 0
    async with deps.db.session() as session:
        if (
            await timers.mark_sent(session, model=PublicReminder, row_id=reminder_id, token=token, now=deps.clock.now())
            is None
        ):
            return False
        await timeline.record(
            session,
            incident_id=row.incident_id,
            at=deps.clock.now(),
            text="Reminded the channel to publish a public update",
            payload=events.ReminderSent(kind=Kind.PUBLIC_UPDATE, reminder_id=reminder_id, seq=row.seq),
        )
        nxt = await service.plan_reminder(session, incident_id=row.incident_id, due_at=now + page.remind_every, now=now)
    page.wake_at(nxt.due_at)
    return True


async def _no_channel(deps: Deps, *, row: PublicReminder, token: str, now: datetime) -> None:
    """The incident has no channel (its setup failed): nobody was reminded, so the timeline does not say so.
    The next one is planned: a setup retried meanwhile gives it a channel to go to."""
    await _next_instead(deps, row=row, token=token, now=now, reason="the incident has no channel")


async def _reminder_failed(deps: Deps, *, row: PublicReminder, token: str, now: datetime, exc: ChatError) -> None:
    """Retried a minute later, then given up for the next one, as status reminders are: a channel someone
    archived or removed the bot from answers the same every minute for as long as the incident is open."""
    if row.attempts >= REMINDER_ATTEMPTS:
        reason = f"gave up after {row.attempts} attempts: {exc.code or exc}"
        await _next_instead(deps, row=row, token=token, now=now, reason=reason)
        return
    retry_at = now + timedelta(minutes=1)
    async with deps.db.session() as session:
        # Slack's code, which tells whether it may have posted (`exceptions.unanswered`), not the message.
        error = exc.code or str(exc)
        await timers.release(
            session, model=PublicReminder, row_id=row.id or 0, token=token, retry_at=retry_at, error=error
        )
    page_of(deps).wake_at(retry_at)


async def _next_instead(deps: Deps, *, row: PublicReminder, token: str, now: datetime, reason: str) -> None:
    """This reminder cancelled with `reason` (still ours to cancel), and the next one planned an interval on."""
    page = page_of(deps)
    async with deps.db.session() as session:
        if not await timers.cancel(
            session, model=PublicReminder, row_id=row.id or 0, token=token, now=now, reason=reason
        ):
            return
        nxt = await service.plan_reminder(session, incident_id=row.incident_id, due_at=now + page.remind_every, now=now)
    log.warning("INC-%s: no reminder to publish this time: %s", row.incident_id, reason)
    page.wake_at(nxt.due_at)
