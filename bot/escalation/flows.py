"""The escalator: what the rest of the bot calls when an incident starts, changes or ends.

`Escalator` is the one object the rest of the bot talks to (signal handlers, the scheduler, the
`/incident oncall` command, the Acknowledge button and playbooks' `page` step). It plans rows
(`pages.planning`, `reminders.rows`) and hands sending to `pages.sending`, `reminders.sending`
and the `sweep`; it never imports Slack.

Pages start when the incident row exists, not when its channel does (Slack may make the channel
wait): `channel_ready` mentions there the people paged meanwhile.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from bot.clock import Clock
from bot.config import BotConfig, Severity
from bot.db import Database
from bot.escalation import leases, policy
from bot.escalation import oncall as oncall_rules
from bot.escalation.models import Page, ReminderKind
from bot.escalation.pagerduty import PagerDuty
from bot.escalation.pages import planning, queries
from bot.escalation.pages.channel import Channel
from bot.escalation.pages.records import Delivery
from bot.escalation.pages.sending import PageSender
from bot.escalation.pages.writes import PageWrites
from bot.escalation.ports import Pager
from bot.escalation.reminders import rows as reminder_rows
from bot.escalation.reminders.sending import ReminderSender
from bot.escalation.runtime import Runtime
from bot.escalation.sweep import LOOK_AHEAD, RunReport, Sweep
from bot.incidents.models import Incident
from bot.tasks import PagesFirst

log = logging.getLogger(__name__)

# A page that fell due while this process was down (before `Escalator.up_since`) is late by however
# much it is, as the README promises. One that fell due while it was up is marked late only past
# this tolerance (another replica died holding it, or the process was starved): normal wake-ups are
# within a second, the safety sweep within 30 s.
DEFAULT_LATE_AFTER = timedelta(seconds=60)
# Incidents declared longer ago than this without any page row were lost between declaring and
# planning (a crash); younger ones are probably still being planned by the replica that declared
# them. Planning twice is harmless (the unique index keeps one plan): this only spares the race.
RECOVER_AFTER = timedelta(seconds=30)
# ... and older than this are left alone: a forgotten week-old incident should not page the CTO
# because a rotation was configured today.
RECOVER_WITHIN = timedelta(hours=24)


class Escalator:
    def __init__(
        self,
        *,
        db: Database,
        clock: Clock,
        pager: Pager,
        config: BotConfig,
        pagerduty: PagerDuty | None = None,
        lease: timedelta = leases.DEFAULT_LEASE,
        late_after: timedelta = DEFAULT_LATE_AFTER,
        max_attempts: int = 3,
        retry_backoff: timedelta = timedelta(seconds=30),
        concurrency: int = 64,
        look_ahead: timedelta = LOOK_AHEAD,
        on_page: Callable[[Page, Delivery], None] | None = None,
        priority: PagesFirst | None = None,
        pager_db: Database | None = None,
    ) -> None:
        send_db = pager_db or db
        self.rt = Runtime(
            db=db,
            send_db=send_db,
            clock=clock,
            pager=pager,
            config=config,
            pagerduty=pagerduty,
            writes=PageWrites(db=send_db, clock=clock, lease=lease),
            priority=priority or PagesFirst(),
            lease=lease,
            late_after=late_after,
            max_attempts=max_attempts,
            retry_backoff=retry_backoff,
            on_page=on_page,
        )
        self.channel = Channel(self.rt)
        self.page_sender = PageSender(self.rt, self.channel)
        self.reminder_sender = ReminderSender(self.rt)
        self.sweep = Sweep(
            self.rt, self.page_sender, self.reminder_sender, concurrency=concurrency, look_ahead=look_ahead
        )

    # --- settings the scheduler, commands and tests read ---------------------------------------

    @property
    def db(self) -> Database:
        return self.rt.db

    @property
    def clock(self) -> Clock:
        return self.rt.clock

    @property
    def look_ahead(self) -> timedelta:
        """How far ahead a sweep reads the pages it is to send (the scheduler wakes it half that early)."""
        return self.sweep.look_ahead

    @property
    def config(self) -> BotConfig:
        return self.rt.config

    @property
    def retry_backoff(self) -> timedelta:
        return self.rt.retry_backoff

    @property
    def writes(self) -> PageWrites:
        return self.rt.writes

    @property
    def up_since(self) -> datetime | None:
        """When this process started paging (set by the scheduler's start): pages due before were missed."""
        return self.rt.up_since

    @up_since.setter
    def up_since(self, when: datetime | None) -> None:
        self.rt.up_since = when

    @property
    def wake(self) -> Callable[[datetime], None]:
        """Set by the scheduler: called with a due time whenever a row is planned or moved."""
        return self.rt.wake

    @wake.setter
    def wake(self, wake: Callable[[datetime], None]) -> None:
        self.rt.wake = wake

    @property
    def pages_anyone(self) -> bool:
        """False when bot.yml names nobody: every level pages only `oncall` and there is no rotation.

        That is the default config; planning pages there would only post "reached nobody" in every
        incident channel. `python -m bot check` warns about it instead.
        """
        oncall = self.config.oncall
        if oncall.rotation is not None or oncall.overrides or self.rt.pagerduty is not None:
            return True
        return any(target != "oncall" for level in self.config.escalation.levels for target in level.notify)

    def plans_for(self, severity: Severity) -> bool:
        """Whether an incident declared at `severity` gets pages or a status reminder planned."""
        return self.pages_anyone or severity in self.config.reminders.status_update_severities

    # --- reacting to the incident lifecycle --------------------------------------------------

    async def incident_declared(self, incident_id: int) -> RunReport:
        """Plan every level and the status reminder, then page what is due (level 1) at once."""
        now = self.clock.now()
        # On the pager's engine: in a storm the pages are planned while the declarations' sessions queue.
        async with self.rt.send_db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or not incident.is_open:
                return RunReport()
            added = []
            if self.pages_anyone:
                added = await planning.plan_pages(
                    session, incident=incident, escalation=self.config.escalation, now=now
                )
            reminder = await reminder_rows.plan_status_reminder(
                session, incident=incident, config=self.config.reminders, now=now, fresh=True
            )
        # Only this incident's own due pages: with N declarations at once, N sweeps over every due
        # row would make ~N² claim attempts. Rows planned for later get a wake-up; anything else
        # due (another process's, a retry) is the scheduler's sweep's business. Nothing planned due
        # now (nobody to page, a P3 whose level 1 waits): nothing to look for.
        due_now = any(page.due_at <= now for page in added)
        report = await self.send_due(incident_id) if due_now else RunReport()
        later = [*(page.due_at for page in added), *([reminder.due_at] if reminder else [])]
        self.rt.wake_for([due for due in later if due > now])
        return report

    async def incident_acknowledged(self, incident_id: int, *, user: str) -> planning.AckResult:
        """Record the ack on the pages sent so far; `stop_on: ack` cancels the rest."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return planning.AckResult([], [])
            stop = policy.stop_on(self.config.escalation, incident.severity)
            result = await planning.acknowledge(session, incident_id=incident_id, user=user, now=now, stop=stop)
        await self.rt.call_pagerduty("acknowledge", incident)
        return result

    async def severity_changed(self, incident_id: int) -> RunReport:
        """Re-plan pending levels (and reminders) for the new severity; page newly due levels at once."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return RunReport()
            if self.pages_anyone:
                await planning.replan(session, incident=incident, escalation=self.config.escalation, now=now)
            reminder = await reminder_rows.plan_status_reminder(
                session, incident=incident, config=self.config.reminders, now=now
            )
            await planning.record_planned_severity(session, incident_id=incident_id, severity=incident.severity)
            due = await leases.next_due(session)
        report = await self.send_due(incident_id)
        self.rt.wake_for([d for d in (due, reminder.due_at if reminder else None) if d is not None and d > now])
        return report

    async def incident_resolved(self, incident_id: int, *, actor: str | None = None) -> None:
        """Cancel everything pending and plan the post-mortem chase."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return
            await planning.cancel_pages(
                session, incident_id=incident_id, now=now, reason="incident resolved", actor=actor
            )
            await reminder_rows.cancel_reminders(
                session,
                incident_id=incident_id,
                kind=ReminderKind.STATUS_UPDATE,
                now=now,
                reason="incident resolved",
            )
            reminder = None
            if not incident.is_open:
                reminder = await reminder_rows.plan_postmortem_reminder(
                    session, incident=incident, config=self.config.reminders, now=now
                )
        if reminder is not None:
            self.rt.wake_for([reminder.due_at])
        failed = await self.rt.call_pagerduty("resolve", incident)
        if failed is not None:
            # Left triggered, PagerDuty goes on phoning people about an incident that is over. Failing
            # this handler has the signal work retry it (what ran above finds nothing left to do) and,
            # if it gives up, tell the channel to resolve it in PagerDuty by hand.
            raise failed

    async def recover(self) -> int:
        """Plan what a crash lost between a commit and its signal's handler (every sweep runs it).

        An incident declared but never planned is planned; one whose severity changed but whose
        pages were not re-planned for it is re-planned. Returns how many incidents were fixed.
        """
        now = self.clock.now()
        async with self.db.session() as session:
            lost = []
            if self.pages_anyone:
                lost = await queries.open_incidents_without_pages(
                    session, declared_after=now - RECOVER_WITHIN, declared_before=now - RECOVER_AFTER
                )
            stale = await queries.open_incidents_planned_for_another_severity(session)
        for incident in lost:
            assert incident.id is not None
            log.warning("%s has no escalation plan (lost at a crash?): planning it now", incident.ref)
            async with self.db.session() as session:
                await planning.plan_pages(session, incident=incident, escalation=self.config.escalation, now=now)
                await reminder_rows.plan_status_reminder(
                    session, incident=incident, config=self.config.reminders, now=now
                )
        for incident_id in stale:
            log.warning("INC-%s is planned for an older severity (lost at a crash?): re-planning it now", incident_id)
            await self.severity_changed(incident_id)
        return len(lost) + len(stale) + await self._recover_status_reminders(now)

    async def _recover_status_reminders(self, now: datetime) -> int:
        """Plan the status reminder a crash lost (with nobody to page, no page row says it was lost)."""
        async with self.db.session() as session:
            unplanned = await reminder_rows.incidents_never_reminded(
                session,
                config=self.config.reminders,
                declared_after=now - RECOVER_WITHIN,
                declared_before=now - RECOVER_AFTER,
            )
            for incident in unplanned:
                log.warning("%s has no status reminder (lost at a crash?): planning it now", incident.ref)
                await reminder_rows.plan_status_reminder(
                    session, incident=incident, config=self.config.reminders, now=now
                )
        return len(unplanned)

    async def channel_ready(self, incident_id: int) -> int:
        """The channel is set up: invite and mention there the people paged before it was (how many)."""
        return await self.channel.catch_up(incident_id)

    async def escalate_now(self, incident_id: int, *, actor: str | None = None) -> str:
        """Page the next level now (a playbook's `page` step, or someone who cannot wait)."""
        async with self.db.session() as session:
            page = await planning.page_next_level_now(session, incident_id=incident_id, now=self.clock.now())
        if page is None:
            return "every escalation level has been paged already (or the incident is stopped)"
        log.info("INC-%s: level %s paged early by %s", incident_id, page.level, actor)
        await self.send_due(incident_id)
        return f"level {page.level} ({page.name}) was paged now"

    # --- sending -----------------------------------------------------------------------------

    async def send_due(self, incident_id: int) -> RunReport:
        """Send this incident's rows that are due now (a declaration's level 1, a raised severity's levels)."""
        return await self.sweep.send_due(incident_id)

    async def run_due(self) -> RunReport:
        """Send every page and reminder that is due and not held by another process (`sweep`).

        A sweep over every row: in the bot it runs only from `EscalationScheduler.run`, one at a time.
        """
        return await self.sweep.run_due()

    async def send_page(self, page_id: int, *, dms_out: Callable[[], None] | None = None) -> bool:
        """Claim, deliver and mark one page (`PageSender.send_page`)."""
        return await self.page_sender.send_page(page_id, dms_out=dms_out)

    async def send_reminder(self, reminder_id: int) -> bool:
        return await self.reminder_sender.send_reminder(reminder_id)

    # --- reading -------------------------------------------------------------------------------

    async def next_due(self) -> datetime | None:
        async with self.db.session() as session:
            return await leases.next_due(session)

    def on_call(self, at: datetime | None = None) -> list[oncall_rules.LevelOnCall]:
        """Per level: who is paged now and after the next hand-off (`/incident oncall`)."""
        return oncall_rules.per_level(self.config.escalation, self.config.oncall, at or self.clock.now())

    async def pages(self, incident_id: int) -> list[Page]:
        async with self.db.session() as session:
            return await queries.pages(session, incident_id=incident_id)
