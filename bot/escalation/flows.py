"""Escalation flows: plan pages when an incident starts, send what is due, stop on ack or resolve.

`Escalator` is the one object the rest of the bot talks to (signal handlers, the scheduler, the
`/incident oncall` command and the Acknowledge button). It reads and writes rows through
`service`, talks to people through the `Pager` port and never imports Slack.

Sending is always: claim the row (lease) → deliver → finish (mark sent) in one place, `send_page`
and `send_reminder`, whoever triggers it (the declaration, a timer, a sweep, a restart).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.clock import Clock, utc
from bot.config import BotConfig
from bot.db import Database
from bot.escalation import oncall as oncall_rules
from bot.escalation import policy, service
from bot.escalation.models import Page, Reminder, ReminderKind
from bot.escalation.pagerduty import PagerDuty
from bot.escalation.ports import PageMessage, Pager, PageReport, ReminderMessage
from bot.exceptions import BotError, ChatError
from bot.incidents.models import Incident

log = logging.getLogger(__name__)

# A page that goes out more than this after its due time is marked late (the bot was down, or
# another replica died holding it). Normal wake-ups are within a second; the safety sweep within 30 s.
DEFAULT_LATE_AFTER = timedelta(seconds=60)
# Incidents declared longer ago than this without any page row were lost between declaring and
# planning (a crash); younger ones are probably still being set up by the replica that declared them.
RECOVER_AFTER = timedelta(minutes=2)


@dataclass
class RunReport:
    pages: int = 0
    reminders: int = 0


class Escalator:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        pager: Pager,
        config: BotConfig,
        pagerduty: PagerDuty | None = None,
        lease: timedelta = service.DEFAULT_LEASE,
        late_after: timedelta = DEFAULT_LATE_AFTER,
        max_attempts: int = 3,
        retry_backoff: timedelta = timedelta(seconds=30),
    ) -> None:
        self.db = db
        self.clock = clock
        self.pager = pager
        self.config = config
        self.pagerduty = pagerduty
        self.lease = lease
        self.late_after = late_after
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        # Set by the scheduler: called with a due time whenever a row is planned or moved.
        self.wake: Callable[[datetime], None] = lambda when: None

    # --- reacting to the incident lifecycle --------------------------------------------------

    async def incident_declared(self, incident_id: int) -> RunReport:
        """Plan every level and the status reminder, then page what is due (level 1) at once."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or not incident.is_open:
                return RunReport()
            added = await service.plan_pages(session, incident=incident, escalation=self.config.escalation, now=now)
            reminder = await service.plan_status_reminder(
                session, incident=incident, config=self.config.reminders, now=now
            )
        self._wake([page.due_at for page in added] + ([reminder.due_at] if reminder else []))
        return await self.run_due()

    async def incident_acknowledged(
        self, incident_id: int, *, user: str, page_id: int | None = None
    ) -> service.AckResult:
        """Record the ack on the pages sent so far; `stop_on: ack` cancels the rest."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return service.AckResult([], [])
            stop = policy.stop_on(self.config.escalation, incident.severity)
            result = await service.acknowledge(
                session, incident_id=incident_id, user=user, now=now, stop=stop, page_id=page_id
            )
        await self._pagerduty("acknowledge", incident)
        return result

    async def severity_changed(self, incident_id: int) -> RunReport:
        """Re-plan pending levels (and reminders) for the new severity; page newly due levels at once."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return RunReport()
            await service.replan(session, incident=incident, escalation=self.config.escalation, now=now)
            reminder = await service.plan_status_reminder(
                session, incident=incident, config=self.config.reminders, now=now
            )
            due = await service.next_due(session)
        self._wake([d for d in (due, reminder.due_at if reminder else None) if d is not None])
        return await self.run_due()

    async def incident_resolved(self, incident_id: int, *, actor: str | None = None) -> None:
        """Cancel everything pending and plan the post-mortem chase."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return
            await service.cancel_pages(
                session, incident_id=incident_id, now=now, reason="incident resolved", actor=actor
            )
            await service.cancel_reminders(
                session,
                incident_id=incident_id,
                kind=ReminderKind.STATUS_UPDATE,
                now=now,
                reason="incident resolved",
            )
            reminder = None
            if not incident.is_open:
                reminder = await service.plan_postmortem_reminder(
                    session, incident=incident, config=self.config.reminders, now=now
                )
        if reminder is not None:
            self._wake([reminder.due_at])
        await self._pagerduty("resolve", incident)

    async def recover(self) -> int:
        """On start: plan incidents that were declared but never planned (a crash in between)."""
        now = self.clock.now()
        async with self.db.session() as session:
            lost = await service.open_incidents_without_pages(session, declared_before=now - RECOVER_AFTER)
        for incident in lost:
            assert incident.id is not None
            log.warning("%s has no escalation plan (lost at a crash?): planning it now", incident.ref)
            async with self.db.session() as session:
                await service.plan_pages(session, incident=incident, escalation=self.config.escalation, now=now)
                await service.plan_status_reminder(session, incident=incident, config=self.config.reminders, now=now)
        return len(lost)

    # --- sending -----------------------------------------------------------------------------

    async def run_due(self) -> RunReport:
        """Send every page and reminder that is due and not held by another process."""
        report = RunReport()
        batch = 50
        while True:
            async with self.db.session() as session:
                ids = await service.due_ids(session, model=Page, now=self.clock.now(), limit=batch)
            for page_id in ids:
                if await self.send_page(page_id):
                    report.pages += 1
            if len(ids) < batch:
                break
        while True:
            async with self.db.session() as session:
                ids = await service.due_ids(session, model=Reminder, now=self.clock.now(), limit=batch)
            for reminder_id in ids:
                if await self.send_reminder(reminder_id):
                    report.reminders += 1
            if len(ids) < batch:
                break
        return report

    async def next_due(self) -> datetime | None:
        async with self.db.session() as session:
            return await service.next_due(session)

    async def send_page(self, page_id: int) -> bool:
        """Claim, deliver and mark one page; False when another process has it or it should not go out."""
        token = service.new_token()
        async with self.db.session() as session:
            page = await service.claim(
                session, model=Page, row_id=page_id, token=token, now=self.clock.now(), lease=self.lease
            )
        if page is None:
            return False
        try:
            return await self._deliver_page(page, token)
        except Exception as exc:
            log.exception("page %s (incident %s, level %s) failed", page_id, page.incident_id, page.level)
            await self._retry_later(Page, page_id, token, attempts=page.attempts, error=f"{type(exc).__name__}: {exc}")
            return False

    async def _deliver_page(self, page: Page, token: str) -> bool:
        assert page.id is not None
        now = self.clock.now()
        escalation = self.config.escalation
        async with self.db.session() as session:
            incident = await session.get(Incident, page.incident_id)
            reason = self._page_stop_reason(page, incident)
            if reason is not None:
                await service.cancel_claimed(session, model=Page, row_id=page.id, token=token, now=now, reason=reason)
                return False
        assert incident is not None
        delay = now - utc(page.due_at)
        message = PageMessage(
            page_id=page.id,
            level=page.level,
            name=page.name,
            repeat=page.repeat,
            late_by=delay if delay > self.late_after else None,
        )
        users, unresolved = await self._resolve_targets(page.notify, now)
        delivery = service.Delivery()
        dm_failed: dict[str, str] = {}
        for user in users:
            try:
                await self.pager.dm_page(user=user, incident=incident, page=message)
            except ChatError as exc:
                dm_failed[user] = exc.code or str(exc)
                log.warning("page DM to %s for %s failed: %s", user, incident.ref, dm_failed[user])
            except Exception:
                # One broken DM must not stop the others (or re-DM them on a retry).
                log.exception("page DM to %s for %s failed", user, incident.ref)
                dm_failed[user] = "unexpected error"
            else:
                delivery.sent_to.append(user)
        delivery.failed = {**dm_failed, **unresolved}
        if incident.channel_id and delivery.sent_to:
            try:
                await self.pager.invite(channel_id=incident.channel_id, users=list(delivery.sent_to))
            except ChatError as exc:
                delivery.errors.append(f"invite to the channel failed: {exc.code or exc}")
        reported = False
        if incident.channel_id:
            report = PageReport(page=message, paged=list(delivery.sent_to), failed=dm_failed, unresolved=unresolved)
            try:
                await self.pager.report_page(incident=incident, report=report)
                reported = True
            except ChatError as exc:
                delivery.errors.append(f"channel mention failed: {exc.code or exc}")
        if page.level == 1 and page.repeat == 0 and self.pagerduty is not None:
            error = await self._pagerduty("trigger", incident)
            if error:
                delivery.errors.append(error)
        if not delivery.sent_to and not reported and page.attempts < self.max_attempts:
            # Nothing reached anybody: try again rather than record a page nobody saw.
            why = "; ".join([*(f"{k}: {v}" for k, v in delivery.failed.items()), *delivery.errors]) or "no target"
            await self._retry_later(Page, page.id, token, attempts=page.attempts, error=why)
            return False
        async with self.db.session() as session:
            finished = await service.finish_page(
                session,
                page_id=page.id,
                token=token,
                now=now,
                delivery=delivery,
                escalation=escalation,
                severity=incident.severity,
                late_after=self.late_after,
            )
            due = await service.next_due(session)
        if finished is None:
            log.error("page %s for %s was sent but our claim had been taken over", page.id, incident.ref)
            return False
        if due is not None:
            self.wake(due)
        return True

    def _page_stop_reason(self, page: Page, incident: Incident | None) -> str | None:
        """Checked again at send time, in case the signal that should have cancelled the page was lost."""
        if incident is None:
            return "incident no longer exists"
        if not incident.is_open:
            return "incident resolved"
        escalation = self.config.escalation
        if policy.stop_on(escalation, incident.severity) == "ack" and incident.acknowledged_at is not None:
            return "incident acknowledged"
        if page.level > policy.level_count(escalation, incident.severity):
            return f"{incident.severity} pages {policy.level_count(escalation, incident.severity)} level(s)"
        return None

    async def _resolve_targets(self, notify: list[str], now: datetime) -> tuple[list[str], dict[str, str]]:
        """bot.yml targets → user IDs; what resolves to nobody is returned with the reason."""
        users: list[str] = []
        unresolved: dict[str, str] = {}

        async def user_id(target: str) -> str | None:
            if not target.startswith("@"):
                return target
            try:
                found = await self.pager.lookup_user(handle=target)
            except ChatError as exc:
                unresolved[target] = f"could not look up {target}: {exc.code or exc}"
                return None
            if found is None:
                unresolved[target] = f"no Slack user is called {target}"
            return found

        for target in notify:
            found: list[str | None] = []
            if target == "oncall":
                person = oncall_rules.on_call_at(self.config.oncall, now)
                if person is None:
                    unresolved[target] = "nobody is on call: set oncall.rotation in bot.yml"
                else:
                    found.append(await user_id(person))
            elif target.startswith("S"):
                try:
                    members = await self.pager.group_members(group_id=target)
                except ChatError as exc:
                    unresolved[target] = f"could not read user group {target}: {exc.code or exc}"
                    members = []
                else:
                    if not members:
                        unresolved[target] = f"user group {target} has no members"
                found.extend(members)
            else:
                found.append(await user_id(target))
            for user in found:
                if user is not None and user not in users:
                    users.append(user)
        return users, unresolved

    async def send_reminder(self, reminder_id: int) -> bool:
        token = service.new_token()
        async with self.db.session() as session:
            reminder = await service.claim(
                session, model=Reminder, row_id=reminder_id, token=token, now=self.clock.now(), lease=self.lease
            )
        if reminder is None:
            return False
        try:
            return await self._deliver_reminder(reminder, token)
        except Exception as exc:
            log.exception("reminder %s (incident %s) failed", reminder_id, reminder.incident_id)
            await self._retry_later(
                Reminder, reminder_id, token, attempts=reminder.attempts, error=f"{type(exc).__name__}: {exc}"
            )
            return False

    async def _deliver_reminder(self, reminder: Reminder, token: str) -> bool:
        assert reminder.id is not None
        now = self.clock.now()
        config = self.config.reminders
        async with self.db.session() as session:
            incident = await session.get(Incident, reminder.incident_id)
            finished = await service.postmortem_finished(session, incident_id=reminder.incident_id)
            reason: str | None = None
            next_due: datetime | None = None
            if incident is None:
                reason = "incident no longer exists"
            elif reminder.kind == ReminderKind.STATUS_UPDATE:
                if not service.wants_status_reminders(incident, config):
                    reason = "incident resolved" if not incident.is_open else f"no reminders for {incident.severity}"
                else:
                    due = service.status_update_due(incident, config)
                    if due > now:
                        # Someone posted an update since this was planned: wait for the new deadline.
                        await service.defer_reminder(session, reminder_id=reminder.id, token=token, due_at=due)
                        self.wake(due)
                        return False
                    next_due = now + config.status_update_every
            elif reminder.kind == ReminderKind.POSTMORTEM:
                if incident.is_open:
                    reason = "incident is open again"
                elif finished:
                    reason = "post-mortem finished"
            else:
                reason = f"unknown reminder kind {reminder.kind!r}"
            if reason is not None:
                await service.cancel_claimed(
                    session, model=Reminder, row_id=reminder.id, token=token, now=now, reason=reason
                )
                return False
        assert incident is not None
        if reminder.kind == ReminderKind.STATUS_UPDATE:
            since = utc(incident.last_status_update_at or incident.declared_at)
        else:
            since = utc(incident.resolved_at or now)
        person = (
            incident.commander
            or (incident.resolved_by if reminder.kind == ReminderKind.POSTMORTEM else None)
            or incident.declared_by
        )
        mention = [person] if person else []
        message = ReminderMessage(kind=reminder.kind, overdue_by=now - since, mention=mention)
        try:
            await self.pager.post_reminder(incident=incident, reminder=message)
            error = None
        except ChatError as exc:
            error = f"reminder could not be posted: {exc.code or exc}"
            if reminder.attempts < self.max_attempts:
                await self._retry_later(Reminder, reminder.id, token, attempts=reminder.attempts, error=error)
                return False
        async with self.db.session() as session:
            done = await service.finish_reminder(
                session,
                reminder_id=reminder.id,
                token=token,
                now=now,
                sent_to=mention if error is None else [],
                error=error,
                late_after=self.late_after,
                next_due=next_due,
            )
        if next_due is not None:
            self.wake(next_due)
        return done is not None and error is None

    async def _retry_later(
        self, model: type[Page] | type[Reminder], row_id: int, token: str, *, attempts: int, error: str
    ) -> None:
        if attempts >= self.max_attempts:
            await self._give_up(model, row_id, token, error=error)
            return
        retry_at = self.clock.now() + self.retry_backoff * max(attempts, 1)
        try:
            async with self.db.session() as session:
                await service.release(session, model=model, row_id=row_id, token=token, retry_at=retry_at, error=error)
        except Exception:
            log.exception("could not release %s %s; its lease will expire instead", model.__name__, row_id)
            return
        self.wake(retry_at)

    async def _give_up(self, model: type[Page] | type[Reminder], row_id: int, token: str, *, error: str) -> None:
        """After `max_attempts` failures: record the failure (timeline) instead of retrying for ever."""
        now = self.clock.now()
        try:
            async with self.db.session() as session:
                if model is Page:
                    page = await session.get(Page, row_id)
                    incident = await session.get(Incident, page.incident_id) if page else None
                    await service.finish_page(
                        session,
                        page_id=row_id,
                        token=token,
                        now=now,
                        delivery=service.Delivery(errors=[f"gave up after {self.max_attempts} attempts: {error}"]),
                        escalation=self.config.escalation,
                        severity=incident.severity if incident else "P1",
                        late_after=self.late_after,
                    )
                else:
                    await service.finish_reminder(
                        session,
                        reminder_id=row_id,
                        token=token,
                        now=now,
                        sent_to=[],
                        error=f"gave up after {self.max_attempts} attempts: {error}",
                        late_after=self.late_after,
                        next_due=None,
                    )
        except Exception:
            log.exception("could not record the failure of %s %s", model.__name__, row_id)

    async def _pagerduty(self, action: str, incident: Incident) -> str | None:
        """Best effort: PagerDuty is an extra channel, never a reason to lose the Slack page."""
        if self.pagerduty is None:
            return None
        try:
            await getattr(self.pagerduty, action)(incident)
        except BotError as exc:
            log.warning("pagerduty %s for %s failed: %s", action, incident.ref, exc)
            return str(exc)
        return None

    def _wake(self, times: list[datetime]) -> None:
        if times:
            self.wake(min(times))

    # --- reading -------------------------------------------------------------------------------

    def on_call(self, at: datetime | None = None) -> list[oncall_rules.LevelOnCall]:
        """Per level: who is paged now and after the next hand-off (`/incident oncall`)."""
        return oncall_rules.per_level(self.config.escalation, self.config.oncall, at or self.clock.now())

    async def pages(self, incident_id: int) -> list[Page]:
        async with self.db.session() as session:
            return await service.pages(session, incident_id=incident_id)
