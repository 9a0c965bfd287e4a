"""Sending one reminder to publish: claim it, re-check it, post it with the button, plan the next one.

The post names the reminder (message metadata), so an attempt whose outcome is unknown is looked for rather
than repeated: by the retry after a lost answer (`retries.posted_before`), by the last attempt after its own
lost answer (`retries.posted_on_last`), and by a last attempt that broke on an error of our own
(`retries.posted_after_break`), as escalation's reminders do. An error of our own is retried like Slack's
failures, a bounded number of times, and never escapes into the sweep, which has other work to do.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING

from bot.clock import utc
from bot.escalation.retries import posted_after_break, posted_before, posted_on_last
from bot.exceptions import ChatError, unanswered
from bot.incidents import service as incidents
from bot.incidents.models import Incident
from bot.statuspage import service, timers
from bot.statuspage.flows import page_of, wants_reminders
from bot.statuspage.models import PublicReminder
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

# Attempts at one reminder to publish before it is given up for the next (status reminders give up after 3).
REMINDER_ATTEMPTS = 3


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
        return await _send_claimed(deps, row=row, token=token, incident=incident, now=now, since=now - basis)
    except Exception as exc:
        log.exception("reminder to publish %s (INC-%s) failed", row.id, row.incident_id)
        await _broke(deps, row=row, token=token, incident=incident, now=now, error=f"{type(exc).__name__}: {exc}")
        return False


async def _send_claimed(
    deps: Deps, *, row: PublicReminder, token: str, incident: Incident, now: datetime, since: timedelta
) -> bool:
    try:
        posted = await _post_once(deps, row=row, token=token, incident=incident, since=since)
    except ChatError as exc:
        # Slack's code, which tells whether it may have posted (`exceptions.unanswered`), not the message.
        await _reminder_failed(deps, row=row, token=token, now=now, error=exc.code or str(exc))
        return False
    if not posted:
        await _no_channel(deps, row=row, token=token, now=now)
        return False
    return await _reminded(deps, row=row, token=token, now=now)


async def _broke(deps: Deps, *, row: PublicReminder, token: str, incident: Incident, now: datetime, error: str) -> None:
    """An error of our own (a bug, a write failing after Slack took the post): retried as Slack's failures are,
    the retry looking for the post first (`error` reads as an unknown outcome); the last attempt looks before
    giving up. Anything raised here is logged: the claim's lease ends and the next sweep takes the row."""
    try:
        if row.attempts >= REMINDER_ATTEMPTS and await posted_after_break(
            _look(deps, row, incident), _what(row, incident)
        ):
            await _reminded(deps, row=row, token=token, now=now)
            return
        await _reminder_failed(deps, row=row, token=token, now=now, error=error)
    except Exception:
        log.exception("could not record reminder to publish %s's failure; its lease will expire instead", row.id)


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
    look, what = _look(deps, row, incident), _what(row, incident)
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


async def _reminder_failed(deps: Deps, *, row: PublicReminder, token: str, now: datetime, error: str) -> None:
    """Retried a minute later, then given up for the next one, as status reminders are: a channel someone
    archived or removed the bot from answers the same every minute for as long as the incident is open."""
    if row.attempts >= REMINDER_ATTEMPTS:
        reason = f"gave up after {row.attempts} attempts: {error}"
        await _next_instead(deps, row=row, token=token, now=now, reason=reason)
        return
    retry_at = now + timedelta(minutes=1)
    async with deps.db.session() as session:
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


def _look(deps: Deps, row: PublicReminder, incident: Incident) -> Callable[[], Awaitable[bool]]:
    """Whether this reminder's post (found by the id in its metadata) is in the channel."""
    chat = page_of(deps).chat
    return partial(chat.reminder_posted, incident=incident, reminder_id=row.id or 0, since=utc(row.due_at))


def _what(row: PublicReminder, incident: Incident) -> str:
    return f"reminder to publish {row.id} of {incident.ref}"
