"""Sending one reminder: claim it, check it should still go out, post it, record it.

A status reminder whose incident had an update since it was planned moves to the new deadline
instead of going out; one that is sent plans the next. A post-mortem chase is dropped once the
post-mortem is finished or the incident reopened.

A reminder's post carries its id (message metadata): a retry after an attempt whose outcome is unknown
(the answer lost, `fatal_error`, a crash before it was recorded) looks for it first and records it
when found (`retries.posted_before`), as a page's DM is; so does the last attempt, when its own answer was
lost, before giving up (`retries.posted_on_last`), and when it broke on an error of our own before it
recorded what it sent (`retries.posted_after_break`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import is_user_id
from bot.escalation import leases
from bot.escalation.models import Reminder, ReminderKind
from bot.escalation.ports import ReminderMessage
from bot.escalation.reminders import rows
from bot.escalation.retries import Sender, posted_after_break, posted_before, posted_on_last
from bot.exceptions import ChatError, unanswered
from bot.incidents.models import Incident

# How a failure Slack answered is recorded, before its code: what follows tells whether it may have posted.
_NOT_POSTED = "reminder could not be posted: "


@dataclass(frozen=True)
class _Verdict:
    """Whether a claimed reminder goes out: cancelled (`reason`), moved (`defer_to`), or sent."""

    reason: str | None = None
    defer_to: datetime | None = None
    next_due: datetime | None = None  # a status reminder that goes out plans the next one


class ReminderSender(Sender[Reminder]):
    async def send_reminder(self, reminder_id: int) -> bool:
        token = leases.new_token()
        async with self.rt.db.session() as session:
            reminder = await leases.claim(
                session, model=Reminder, row_id=reminder_id, token=token, now=self.rt.clock.now(), lease=self.rt.lease
            )
        if reminder is None:
            return False
        return await self.deliver(reminder, token, self._deliver_reminder)

    async def _deliver_reminder(self, reminder: Reminder, token: str) -> bool:
        assert reminder.id is not None
        now = self.rt.clock.now()
        async with self.rt.db.session() as session:
            incident = await session.get(Incident, reminder.incident_id)
            verdict = await self._verdict(session, reminder, incident, now)
            if verdict.defer_to is not None:
                # Someone posted an update since this was planned: wait for the new deadline.
                await rows.defer_reminder(session, reminder_id=reminder.id, token=token, due_at=verdict.defer_to)
                self.rt.wake_for([verdict.defer_to])
                return False
            if verdict.reason is not None:
                await leases.cancel_claimed(
                    session, model=Reminder, row_id=reminder.id, token=token, now=now, reason=verdict.reason
                )
                return False
        assert incident is not None
        message = _message(reminder, incident, now)
        try:
            await self._post(reminder, token, incident, message)
            error = None
        except ChatError as exc:
            error = f"{_NOT_POSTED}{exc.code or exc}"
            if reminder.attempts < self.rt.max_attempts:
                await self.retry_later(reminder, token, error=error)
                return False
        async with self.rt.db.session() as session:
            done = await rows.finish_reminder(
                session,
                reminder_id=reminder.id,
                token=token,
                now=now,
                sent_to=message.mention if error is None else [],
                error=error,
                late_after=self.rt.late_after_for(reminder),
                next_due=verdict.next_due,
            )
        if verdict.next_due is not None:
            self.rt.wake_for([verdict.next_due])
        return done is not None and error is None

    async def _post(self, reminder: Reminder, token: str, incident: Incident, message: ReminderMessage) -> None:
        """Post it, unless the last attempt, whose outcome is unknown, did."""
        last = reminder.error
        if last is not None:
            # This attempt's outcome is unknown until recorded: a crash during it must leave no answer of Slack's.
            async with self.rt.db.session() as session:
                await leases.forget_error(session, model=Reminder, row_id=reminder.id or 0, token=token)
        look = self._look(reminder, incident, message)
        what = _what(reminder, incident)
        lost = unanswered(last.removeprefix(_NOT_POSTED) if last else None)
        if reminder.attempts > 1 and lost and await posted_before(look(), what):
            return
        try:
            await self.rt.pager.post_reminder(incident=incident, reminder=message)
        except ChatError as exc:
            # The last attempt, its answer lost: Slack may have posted it. Found, it is sent, not given up.
            code = exc.code or str(exc)
            max_attempts = self.rt.max_attempts
            if not await posted_on_last(
                attempts=reminder.attempts, max_attempts=max_attempts, code=code, look=look, what=what
            ):
                raise

    def _look(self, reminder: Reminder, incident: Incident, message: ReminderMessage) -> Callable[[], Awaitable[bool]]:
        """Whether this reminder's post (found by the id in its metadata) is in the channel."""
        return partial(self.rt.pager.reminder_posted, incident=incident, reminder=message, since=utc(reminder.due_at))

    async def _verdict(
        self, session: AsyncSession, reminder: Reminder, incident: Incident | None, now: datetime
    ) -> _Verdict:
        if incident is None:
            return _Verdict("incident no longer exists")
        if reminder.kind == ReminderKind.STATUS_UPDATE:
            return self._status_update(incident, now)
        if reminder.kind == ReminderKind.POSTMORTEM:
            if incident.is_open:
                return _Verdict("incident is open again")
            if await rows.postmortem_finished(session, incident_id=reminder.incident_id):
                return _Verdict("post-mortem finished")
            return _Verdict()
        return _Verdict(f"unknown reminder kind {reminder.kind!r}")

    def _status_update(self, incident: Incident, now: datetime) -> _Verdict:
        config = self.rt.config.reminders
        if not rows.wants_status_reminders(incident, config):
            return _Verdict("incident resolved" if not incident.is_open else f"no reminders for {incident.severity}")
        due = rows.status_update_due(incident, config)
        if due > now:
            return _Verdict(defer_to=due)
        return _Verdict(next_due=now + config.status_update_every)

    async def record_failure(self, row: Reminder, token: str, *, error: str) -> None:
        """Record the give-up; a status reminder still plans the next (else the incident's reminders end here).

        Given up only after a last attempt that broke on an error of our own, which may have come after Slack
        took the post: it is looked for first, and found, recorded as sent rather than as failed."""
        assert row.id is not None
        now = self.rt.clock.now()
        async with self.rt.db.session() as session:
            incident = await session.get(Incident, row.incident_id)
        found = None if incident is None else await self._found_after_break(row, incident, now)
        next_due = None
        config = self.rt.config.reminders
        if row.kind == ReminderKind.STATUS_UPDATE and incident and rows.wants_status_reminders(incident, config):
            next_due = now + config.status_update_every
        async with self.rt.db.session() as session:
            await rows.finish_reminder(
                session,
                reminder_id=row.id,
                token=token,
                now=now,
                sent_to=[] if found is None else found.mention,
                error=error if found is None else None,
                late_after=self.rt.late_after_for(row),
                next_due=next_due,
            )
        if next_due is not None:
            self.rt.wake_for([next_due])

    async def _found_after_break(self, row: Reminder, incident: Incident, now: datetime) -> ReminderMessage | None:
        """The reminder's post, when the attempt that broke had made it (`retries.posted_after_break`)."""
        message = _message(row, incident, now)
        found = await posted_after_break(self._look(row, incident, message), _what(row, incident))
        return message if found else None


def _what(reminder: Reminder, incident: Incident) -> str:
    return f"reminder {reminder.id} of {incident.ref}"


def _message(reminder: Reminder, incident: Incident, now: datetime) -> ReminderMessage:
    """Whom to ping and how long it has been.

    The commander, else (post-mortem) who resolved it, else who declared or acknowledged it: the
    first of them who is a person. An alert source (`alertmanager`) declares and resolves
    incidents too, but nobody reads its mentions.
    """
    if reminder.kind == ReminderKind.STATUS_UPDATE:
        since = utc(incident.last_status_update_at or incident.declared_at)
    else:
        since = utc(incident.resolved_at or now)
    candidates = [
        incident.commander,
        incident.resolved_by if reminder.kind == ReminderKind.POSTMORTEM else None,
        incident.declared_by,
        incident.acknowledged_by,
    ]
    person = next((who for who in candidates if is_user_id(who)), None)
    mention = [person] if person else []
    return ReminderMessage(kind=reminder.kind, overdue_by=now - since, mention=mention, reminder_id=reminder.id or 0)
