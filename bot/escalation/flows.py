"""Escalation flows: plan pages when an incident starts, send what is due, stop on ack or resolve.

`Escalator` is the one object the rest of the bot talks to (signal handlers, the scheduler, the
`/incident oncall` command and the Acknowledge button). It reads and writes rows through
`service`, talks to people through the `Pager` port and never imports Slack.

Sending is always: claim the row (lease) → deliver → finish (mark sent) in one place, `send_page`
and `send_reminder`, whoever triggers it (the declaration, a timer, a sweep, a restart). A page
not tried yet resolves its recipients before the claim, so the claim records them in the same
write; pages' claims and DM outcomes are written together with other pages' going out at the
same moment (`writes.PageWrites`).

A page DM that fails for a transient reason (Slack 5xx, unreachable, throttled) is not final: the
page is released for a retry after a back-off (30 s, then 60 s) that DMs only the people not yet
reached, and is recorded as sent after the attempt that reaches them, or after `max_attempts`
with the rest under `failed`. A permanent error (`user_not_found`, ...) is final at once and
reported in the channel.

Who triggers what: a signal handler sends only its own incident's due rows (`send_due`); sweeps
over every due row (`run_due`) run only from `EscalationScheduler.run`, one at a time.

A page has two halves. Its DMs go out as soon as it is due, whatever else is going on (one
incident's pages in order). Its channel half (invite, mention) and its record wait for their
turn: per incident (a lock, in one process) and behind other pages' DMs (`PagesFirst`).

Pages start when the incident row exists, not when its channel does (Slack may make the channel
wait). While the channel is missing or still being set up, a page DMs and leaves its channel half
to `channel_ready`, which the end of the setup triggers. The two take the incident's turn, and
`channel_ready` leaves alone a page whose DMs are still going out (it mentions itself after), so
each page is mentioned once and after the pinned summary.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import TypeVar

from bot.clock import Clock, utc
from bot.config import BotConfig
from bot.db import Database
from bot.escalation import oncall as oncall_rules
from bot.escalation import policy, service
from bot.escalation.models import Page, PageTarget, Reminder, ReminderKind, TargetKind, TargetState
from bot.escalation.pagerduty import PagerDuty
from bot.escalation.ports import PageMessage, Pager, PageReport, ReminderMessage, is_transient
from bot.escalation.writes import PageWrites
from bot.exceptions import BotError, ChatError
from bot.incidents.models import Incident
from bot.incidents.service import SETUP_LEASE
from bot.tasks import PagesFirst

log = logging.getLogger(__name__)
T = TypeVar("T", Page, Reminder)

# A page that fell due while this process was down (before `Escalator.up_since`) is late by however
# much it is, as the README promises. One that fell due while it was up is marked late only past
# this tolerance (another replica died holding it, or the process was starved): normal wake-ups are
# within a second, the safety sweep within 30 s.
DEFAULT_LATE_AFTER = timedelta(seconds=60)
# Incidents declared longer ago than this without any page row were lost between declaring and
# planning (a crash); younger ones are probably still being set up by the replica that declared them.
RECOVER_AFTER = timedelta(minutes=2)
# ... and older than this are left alone: a forgotten week-old incident should not page the CTO
# because a rotation was configured today.
RECOVER_WITHIN = timedelta(hours=24)


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
        concurrency: int = 64,
        on_page: Callable[[Page, service.Delivery], None] | None = None,
        priority: PagesFirst | None = None,
        pager_db: Database | None = None,
    ) -> None:
        self.db = db  # planning, channel halves, records: the requests' engine
        # A page's path from due to DM (due rows, recipients, claim, DM outcomes) runs on the pager's own
        # engine (`Database.for_pager()`), so in a storm it never waits for a connection behind the
        # declarations' sessions, nor behind the pages' own bookkeeping.
        self.send_db = pager_db or db
        self.writes = PageWrites(db=self.send_db, clock=clock, lease=lease)  # claims and DM outcomes, together
        self.priority = priority or PagesFirst()
        self.on_page = on_page  # told of every finished page and how it went (metrics)
        self.clock = clock
        self.pager = pager
        self.config = config
        self.pagerduty = pagerduty
        self.lease = lease
        self.late_after = late_after
        # When this process started paging (set by the scheduler's start): pages due before were missed.
        self.up_since: datetime | None = None
        self.max_attempts = max_attempts
        self.retry_backoff = retry_backoff
        self.concurrency = max(concurrency, 1)  # pages whose DMs one sweep sends at once
        # Set by the scheduler: called with a due time whenever a row is planned or moved.
        self.wake: Callable[[datetime], None] = lambda when: None
        # Per incident, while anyone holds or awaits it (`async with` keeps it alive).
        self._turns: weakref.WeakValueDictionary[int, asyncio.Lock] = weakref.WeakValueDictionary()
        self._sweep_woken: Callable[[datetime], None] | None = None  # a sweep in progress, told of new rows

    def _turn(self, incident_id: int) -> asyncio.Lock:
        """One incident's pages' channel halves and its channel catch-up, one at a time (in this process)."""
        lock = self._turns.get(incident_id)
        if lock is None:
            lock = self._turns[incident_id] = asyncio.Lock()
        return lock

    @property
    def pages_anyone(self) -> bool:
        """False when bot.yml names nobody: every level pages only `oncall` and there is no rotation.

        That is the default config; planning pages there would only post "reached nobody" in every
        incident channel. `python -m bot check` warns about it instead.
        """
        oncall = self.config.oncall
        if oncall.rotation is not None or oncall.overrides or self.pagerduty is not None:
            return True
        return any(target != "oncall" for level in self.config.escalation.levels for target in level.notify)

    # --- reacting to the incident lifecycle --------------------------------------------------

    async def incident_declared(self, incident_id: int) -> RunReport:
        """Plan every level and the status reminder, then page what is due (level 1) at once."""
        now = self.clock.now()
        # On the pager's engine: in a storm the pages are planned while the declarations' sessions queue.
        async with self.send_db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None or not incident.is_open:
                return RunReport()
            added = []
            if self.pages_anyone:
                added = await service.plan_pages(session, incident=incident, escalation=self.config.escalation, now=now)
            reminder = await service.plan_status_reminder(
                session, incident=incident, config=self.config.reminders, now=now
            )
        # Only this incident's own due pages: with N declarations at once, N sweeps over every due
        # row would make ~N² claim attempts. Rows planned for later get a wake-up; anything else
        # due (another process's, a retry) is the scheduler's sweep's business.
        report = await self.send_due(incident_id)
        self._wake([d for d in [*(page.due_at for page in added), *([reminder.due_at] if reminder else [])] if d > now])
        return report

    async def incident_acknowledged(self, incident_id: int, *, user: str) -> service.AckResult:
        """Record the ack on the pages sent so far; `stop_on: ack` cancels the rest."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return service.AckResult([], [])
            stop = policy.stop_on(self.config.escalation, incident.severity)
            result = await service.acknowledge(session, incident_id=incident_id, user=user, now=now, stop=stop)
        await self._pagerduty("acknowledge", incident)
        return result

    async def severity_changed(self, incident_id: int) -> RunReport:
        """Re-plan pending levels (and reminders) for the new severity; page newly due levels at once."""
        now = self.clock.now()
        async with self.db.session() as session:
            incident = await session.get(Incident, incident_id)
            if incident is None:
                return RunReport()
            if self.pages_anyone:
                await service.replan(session, incident=incident, escalation=self.config.escalation, now=now)
            reminder = await service.plan_status_reminder(
                session, incident=incident, config=self.config.reminders, now=now
            )
            due = await service.next_due(session)
        report = await self.send_due(incident_id)
        self._wake([d for d in (due, reminder.due_at if reminder else None) if d is not None and d > now])
        return report

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
        if not self.pages_anyone:
            return 0
        now = self.clock.now()
        async with self.db.session() as session:
            lost = await service.open_incidents_without_pages(
                session, declared_after=now - RECOVER_WITHIN, declared_before=now - RECOVER_AFTER
            )
        for incident in lost:
            assert incident.id is not None
            log.warning("%s has no escalation plan (lost at a crash?): planning it now", incident.ref)
            async with self.db.session() as session:
                await service.plan_pages(session, incident=incident, escalation=self.config.escalation, now=now)
                await service.plan_status_reminder(session, incident=incident, config=self.config.reminders, now=now)
        return len(lost)

    async def channel_ready(self, incident_id: int) -> int:
        """The channel is set up: invite and mention there the people paged before it was.

        Returns how many pages were caught up. Safe to repeat: a page whose mention is recorded is skipped.
        """
        caught_up = 0
        async with self._turn(incident_id):
            now = self.clock.now()
            async with self.db.session() as session:
                incident = await session.get(Incident, incident_id)
                if incident is None or not incident.channel_id:
                    return 0
                by_page = await service.targets_by_page(session, incident_id=incident_id)
                pending = []
                for page in await service.pages(session, incident_id=incident_id):
                    assert page.id is not None
                    rows = by_page.get(page.id, [])
                    people = [r for r in rows if r.kind in (TargetKind.USER, TargetKind.TARGET)]
                    # A page whose DMs are going out right now reports itself when they are out.
                    if people and _row(rows, TargetKind.CHANNEL) is None and not _dm_in_flight(rows, now):
                        pending.append((page, rows))
            for page, rows in pending:
                assert page.id is not None
                message = self._message(page, rows, now)
                attempt = _Attempt(
                    number=page.attempts,
                    final=not page.is_pending,
                    retrying=[
                        r.recipient for r in rows if r.kind == TargetKind.USER and r.state == TargetState.PENDING
                    ],
                    retry_in=self.retry_backoff * max(page.attempts, 1),
                )
                await self._invite(rows, incident, attempt)
                await self._report(page.id, rows, incident, message, attempt, now=now)
                caught_up += 1
        if caught_up:
            log.info("%s: %s page(s) sent before the channel existed are now mentioned there", incident.ref, caught_up)
        return caught_up

    # --- sending -----------------------------------------------------------------------------

    async def send_due(self, incident_id: int) -> RunReport:
        """Send this incident's rows that are due now (a declaration's level 1, a raised severity's levels)."""
        report = RunReport()
        now = self.clock.now()
        async with self.db.session() as session:
            due = await service.due_pages(session, now=now, incident_id=incident_id)
            reminder_ids = await service.due_reminders(session, now=now, incident_id=incident_id)
        for page_id, _ in due:
            if await self.send_page(page_id):
                report.pages += 1
        for reminder_id in reminder_ids:
            if await self.send_reminder(reminder_id):
                report.reminders += 1
        return report

    async def escalate_now(self, incident_id: int, *, actor: str | None = None) -> str:
        """Page the next level now (a playbook's `page` step, or someone who cannot wait)."""
        async with self.db.session() as session:
            page = await service.page_next_level_now(session, incident_id=incident_id, now=self.clock.now())
        if page is None:
            return "every escalation level has been paged already (or the incident is stopped)"
        log.info("INC-%s: level %s paged early by %s", incident_id, page.level, actor)
        await self.send_due(incident_id)
        return f"level {page.level} ({page.name}) was paged now"

    async def run_due(self) -> RunReport:
        """Send every page and reminder that is due and not held by another process.

        A sweep over every row: in the bot it runs only from `EscalationScheduler.run`, one at a time.
        It lasts while there is something to send, so a page that falls due meanwhile joins it.
        """
        report = RunReport()
        report.pages = await self._send_pages_as_they_fall_due()
        batch = 50
        while True:
            async with self.db.session() as session:
                ids = await service.due_reminders(session, now=self.clock.now(), limit=batch)
            for reminder_id in ids:
                if await self.send_reminder(reminder_id):
                    report.reminders += 1
            if len(ids) < batch:
                break
        return report

    async def _send_pages_as_they_fall_due(self) -> int:
        """Pages as they fall due: up to `concurrency` sending their DMs at once, each incident's in order.

        A page holds its slot (and its incident's place in line) until its DMs are out, not until
        its channel mention is recorded, and due rows are read again as soon as a slot frees or
        the next row falls due, so in a storm a page starts the moment it is due.
        """
        loop = asyncio.get_running_loop()
        tasks: set[asyncio.Task[bool]] = set()
        dming: dict[int, asyncio.Task[bool]] = {}  # incident -> its page whose DMs are going out
        changed = asyncio.Event()
        sent = 0
        failure: BaseException | None = None
        next_at: datetime | None = None
        waiting = True  # due rows were left for lack of a slot, or behind their incident's page

        def start(page_id: int, incident_id: int) -> None:
            def dms_out(*_: object) -> None:  # when the DMs are out, and again when the task is done
                if dming.get(incident_id) is task:
                    del dming[incident_id]  # the incident's next page may start
                changed.set()

            task = loop.create_task(self.send_page(page_id, dms_out=dms_out))
            dming[incident_id] = task
            task.add_done_callback(dms_out)
            tasks.add(task)

        def woken(when: datetime) -> None:
            nonlocal next_at
            if next_at is None or when < next_at:
                next_at = when
                changed.set()

        outer, self._sweep_woken = self._sweep_woken, woken
        try:
            while True:
                changed.clear()  # before looking: whatever happens from here on wakes the wait below
                for task in [t for t in tasks if t.done()]:
                    tasks.discard(task)
                    if task.exception() is not None:
                        failure = failure or task.exception()  # the database is down, most likely
                    elif task.result():
                        sent += 1
                now = self.clock.now()
                free = min(self.concurrency - len(dming), self.concurrency * 4 - len(tasks))
                if failure is None and free > 0 and (waiting or (next_at is not None and next_at <= now)):
                    async with self.send_db.session() as session:
                        due = await service.due_pages(session, now=now, limit=self.concurrency * 4)
                        next_at = await service.next_page_due(session, after=now)
                    waiting = False
                    for page_id, incident_id in due:
                        if incident_id in dming or free <= 0:
                            waiting = True
                            continue
                        start(page_id, incident_id)
                        free -= 1
                if not tasks:
                    break
                if not changed.is_set():
                    # Look at the clock again by then at the latest: rows due much later are the scheduler's.
                    left = 1.0 if next_at is None else (next_at - self.clock.now()).total_seconds()
                    try:
                        await asyncio.wait_for(changed.wait(), min(max(left, 0.02), 1.0))
                    except TimeoutError:
                        pass
        finally:
            self._sweep_woken = outer
            if tasks:  # cancelled (shutdown): sends under way finish their claim -> deliver -> mark
                await asyncio.wait(tasks)
        if failure is not None:
            raise failure  # after every send in progress has finished
        return sent

    async def next_due(self) -> datetime | None:
        async with self.db.session() as session:
            return await service.next_due(session)

    async def send_page(self, page_id: int, *, dms_out: Callable[[], None] | None = None) -> bool:
        """Claim, deliver and mark one page; False when another process has it or it should not go out.

        True when this call recorded the page as sent; a page released for a retry (someone's DM
        failed for a transient reason) is False until the attempt that finishes it. `dms_out` is
        called once the page's DMs are out (or it will send none), before the channel half.
        """
        async with self.priority.page(then=dms_out) as dms_sent:
            token = service.new_token()
            recipients = await self._first_recipients(page_id)
            claimed = await self.writes.claim(service.PageClaim(page_id, token, recipients))
            if claimed is None:
                return False
            deliver = partial(self._deliver_page, recorded=claimed.recipients, dms_sent=dms_sent)
            return await self._deliver(claimed.page, token, deliver)

    async def send_reminder(self, reminder_id: int) -> bool:
        token = service.new_token()
        async with self.db.session() as session:
            reminder = await service.claim(
                session, model=Reminder, row_id=reminder_id, token=token, now=self.clock.now(), lease=self.lease
            )
        if reminder is None:
            return False
        return await self._deliver(reminder, token, self._deliver_reminder)

    async def _first_recipients(self, page_id: int) -> list[service.NewTarget] | None:
        """A page not tried yet: whom it goes to, resolved before its claim so the claim records them.

        Resolving reads Slack at most (a user group, a handle) and writes nothing, so it runs
        outside any transaction. None when the page is tried already, stopped or gone: its
        sender reads or resolves after the claim, as before.
        """
        now = self.clock.now()
        async with self.send_db.session() as session:
            found = await service.page_with_incident(session, page_id=page_id)
        if found is None:
            return None
        page, incident = found
        if page.attempts or not page.is_pending or utc(page.due_at) > now or self._page_stop_reason(page, incident):
            return None
        users, outcome = await self._resolve(list(page.notify), now)
        return users + _unresolved(outcome)

    async def _deliver(self, row: T, token: str, deliver: Callable[[T, str], Awaitable[bool]]) -> bool:
        """Deliver a claimed row; an unexpected error releases it for a retry (bounded)."""
        try:
            return await deliver(row, token)
        except Exception as exc:
            log.exception("%s %s (incident %s) failed", type(row).__name__, row.id, row.incident_id)
            await self._retry_later(row, token, error=f"{type(exc).__name__}: {exc}")
            return False

    async def _deliver_page(
        self, page: Page, token: str, *, recorded: list[PageTarget] | None, dms_sent: Callable[[], None]
    ) -> bool:
        """One attempt: resolve the targets (first attempt), DM whoever is still pending, then report and decide.

        `recorded`: the recipients the claim recorded (a first attempt resolved before it), else None.

        The DMs go out at once; the channel half (invite, mention) and the record wait for the
        incident's turn, so a page never waits for another page's bookkeeping. Everyone reached
        is recorded per recipient at once, so a retry DMs only the others.
        """
        assert page.id is not None
        now = self.clock.now()
        async with self.send_db.session() as session:
            incident = await session.get(Incident, page.incident_id)
            reason = self._page_stop_reason(page, incident)
            if recorded is not None:
                rows = recorded
            else:  # only a holder of the page's claim adds recipients: on the first claim there are none yet
                rows = [] if page.attempts == 1 else await service.targets(session, page_id=page.id)
            if reason is not None and not _reached(rows):
                await service.cancel_claimed(session, model=Page, row_id=page.id, token=token, now=now, reason=reason)
                return False
        assert incident is not None
        message = self._message(page, rows, now)
        attempt = _Attempt(
            number=page.attempts,
            final=page.attempts >= self.max_attempts,
            retry_in=self.retry_backoff * max(page.attempts, 1),
        )
        mentioned = _row(rows, TargetKind.CHANNEL) is not None
        if reason is None:  # else it reached someone before the incident stopped: DM nobody else
            if recorded is None:
                rows = await self._resolve_page_targets(page, rows, token, now)
            await self._send_dms(rows, incident, message, token, attempt)
        dms_sent()
        # The invite, the mention and the record can wait: they take turns with channel setups.
        async with self.priority.later(), self._turn(page.incident_id):
            return await self._finish_in_turn(
                page, token, message, attempt, now=now, mentioned=mentioned, stopped=reason
            )

    async def _finish_in_turn(
        self,
        page: Page,
        token: str,
        message: PageMessage,
        attempt: _Attempt,
        *,
        now: datetime,
        mentioned: bool,
        stopped: str | None,
    ) -> bool:
        """The channel half and the decision, read afresh: the channel may be ready now, or
        `channel_ready` may have invited and mentioned everyone this attempt reached."""
        assert page.id is not None
        async with self.db.session() as session:
            incident = await session.get(Incident, page.incident_id)
            rows = await service.targets(session, page_id=page.id)
        assert incident is not None
        if stopped is not None:
            return await self._finish(page, token, incident, now=now, errors=[], stopped=stopped)
        caught_up = not mentioned and _row(rows, TargetKind.CHANNEL) is not None
        in_channel = not caught_up and _channel_settled(incident, self.clock.now())  # else `channel_ready`'s
        if in_channel:
            await self._invite(rows, incident, attempt)
        if page.level == 1 and page.repeat == 0 and self.pagerduty is not None:
            rows = await self._trigger_pagerduty(page.id, rows, incident, attempt, now=now)
        if in_channel:
            rows = await self._report(page.id, rows, incident, message, attempt, now=now)

        unreached = in_channel and not _reached(rows, channel=True)  # else the channel's turn comes later
        if not attempt.final and (_outstanding(rows) or unreached):
            # Someone is still to be reached (Slack failed for now), or nothing reached anybody.
            problems = [*(f"{k}: {v}" for k, v in _outstanding(rows).items()), *attempt.errors]
            why = "; ".join(problems or [f"{r.recipient}: {r.error}" for r in rows if r.error]) or "no target"
            if await self._retry_later(page, token, error=why):
                return False
            if not _reached(rows):
                return False  # cancelled meanwhile, and it had reached nobody: it stays cancelled
            # Cancelled while it went out, after reaching someone: sent is the truth.
        return await self._finish(page, token, incident, now=now, errors=attempt.errors)

    def _message(self, page: Page, rows: list[PageTarget], now: datetime) -> PageMessage:
        """What the DM and the channel mention say; late is measured from the first attempt."""
        assert page.id is not None
        delay = _first_attempt(rows, now) - utc(page.due_at)
        return PageMessage(
            page_id=page.id,
            level=page.level,
            name=page.name,
            repeat=page.repeat,
            late_by=delay if delay > self.late_after_for(page) else None,
        )

    def late_after_for(self, row: Page | Reminder) -> timedelta:
        """No tolerance for what fell due while the bot was down (README); `late_after` otherwise."""
        if self.up_since is not None and utc(row.due_at) < self.up_since:
            return timedelta(0)
        return self.late_after

    async def _resolve_page_targets(
        self, page: Page, rows: list[PageTarget], token: str, now: datetime
    ) -> list[PageTarget]:
        """First attempt: bot.yml targets → users, recorded. Later: only targets that failed for now."""
        assert page.id is not None
        people = [r for r in rows if r.kind in (TargetKind.USER, TargetKind.TARGET)]
        if not people:
            todo = list(page.notify)
        else:
            todo = [r.recipient for r in people if r.kind == TargetKind.TARGET and r.state == TargetState.PENDING]
        if not todo:
            return rows
        new, outcome = await self._resolve(todo, now)
        if not people:
            new += _unresolved(outcome)
        async with self.db.session() as session:
            rows = await service.add_targets(
                session, page_id=page.id, new=new, now=now, existing=rows, token=token, lease=self.lease
            )
            if people:
                for row in rows:
                    if row.kind == TargetKind.TARGET and row.recipient in outcome and row.id is not None:
                        state, reason = outcome[row.recipient]
                        if await service.mark_target(session, target_id=row.id, state=state, now=now, error=reason):
                            row.state, row.error = state, reason
        return rows

    async def _resolve(
        self, todo: list[str], now: datetime
    ) -> tuple[list[service.NewTarget], dict[str, tuple[TargetState, str | None]]]:
        """bot.yml targets → the users to DM, and per target: resolved (SENT), or why not (for good or for now)."""
        users: list[service.NewTarget] = []
        outcome: dict[str, tuple[TargetState, str | None]] = {}
        for target in todo:
            resolved = await self._resolve_one(target, now)
            users += [service.NewTarget(TargetKind.USER, user) for user in resolved.users]
            if resolved.reason is None:
                outcome[target] = (TargetState.SENT, None)
            else:
                outcome[target] = (TargetState.PENDING if resolved.transient else TargetState.FAILED, resolved.reason)
        return users, outcome

    async def _send_dms(
        self, rows: list[PageTarget], incident: Incident, message: PageMessage, token: str, attempt: _Attempt
    ) -> None:
        """DM every pending person, each behind its own claim, and record each outcome at once."""
        for row in rows:
            if row.kind != TargetKind.USER or row.state != TargetState.PENDING or row.id is None:
                continue
            now = self.clock.now()
            held = row.claim_token == token and row.claim_expires_at is not None and utc(row.claim_expires_at) > now
            if not held:  # rows this attempt inserted are ours already
                async with self.send_db.session() as session:
                    if not await service.claim_target(
                        session, target_id=row.id, token=token, now=now, lease=self.lease
                    ):
                        continue  # another sender has this person right now
                row.attempts += 1
            state, error = await self._dm(row.recipient, incident, message)
            await self.writes.record(service.DmOutcome(row.id, token, state, error))
            row.state, row.error, row.claim_expires_at = state, error, None
            if state == TargetState.SENT:
                attempt.sent.append(row.recipient)
            elif state == TargetState.FAILED:
                attempt.failed[row.recipient] = error or "failed"
            else:
                attempt.retrying.append(row.recipient)

    async def _dm(self, user: str, incident: Incident, message: PageMessage) -> tuple[TargetState, str | None]:
        """One page DM: SENT, FAILED for good (`user_not_found`, ...) or PENDING (try again later)."""
        try:
            await self.pager.dm_page(user=user, incident=incident, page=message)
        except ChatError as exc:
            reason = exc.code or str(exc)
            log.warning("page DM to %s for %s failed: %s", user, incident.ref, reason)
            return (TargetState.PENDING if is_transient(exc) else TargetState.FAILED), reason
        except Exception:
            # One broken DM must not stop the others; it is retried like a Slack outage (bounded).
            log.exception("page DM to %s for %s failed", user, incident.ref)
            return TargetState.PENDING, "unexpected error"
        return TargetState.SENT, None

    async def _invite(self, rows: list[PageTarget], incident: Incident, attempt: _Attempt) -> None:
        """Invite the people paged, and those whose DM is retried (the channel mention reaches them)."""
        if not incident.channel_id:
            return
        invitees = [
            r
            for r in rows
            if r.kind == TargetKind.USER
            and not r.invited
            and (r.state == TargetState.SENT or r.recipient in attempt.retrying)
        ]
        if not invitees:
            return
        try:
            await self.pager.invite(channel_id=incident.channel_id, users=[r.recipient for r in invitees])
        except ChatError as exc:
            attempt.errors.append(f"invite to the channel failed: {exc.code or exc}")
        async with self.db.session() as session:
            await service.mark_invited(session, target_ids=[r.id for r in invitees if r.id is not None])
        for row in invitees:
            row.invited = True

    async def _trigger_pagerduty(
        self,
        page_id: int,
        rows: list[PageTarget],
        incident: Incident,
        attempt: _Attempt,
        *,
        now: datetime,
    ) -> list[PageTarget]:
        """PagerDuty takes the first page of an incident (best effort; its dedup key makes a repeat harmless)."""
        if _sent(rows, TargetKind.PAGERDUTY):
            return rows
        error = await self._pagerduty("trigger", incident)
        if not error:
            attempt.via.append("PagerDuty")
        return await self._record(page_id, rows, TargetKind.PAGERDUTY, "pagerduty", now=now, error=error)

    async def _report(
        self,
        page_id: int,
        rows: list[PageTarget],
        incident: Incident,
        message: PageMessage,
        attempt: _Attempt,
        *,
        now: datetime,
    ) -> list[PageTarget]:
        """The mention in the incident channel: everything the first time, then only what changed.

        Nothing new on a retry (the DM failed again) posts nothing; the last attempt says who it gave up on.
        """
        assert incident.channel_id is not None
        outstanding = _outstanding(rows)
        gave_up = {t: f"gave up after {attempt.number} attempts: {e}" for t, e in outstanding.items()}
        users = {r.recipient for r in rows if r.kind == TargetKind.USER}
        channel_row = _row(rows, TargetKind.CHANNEL)
        full = channel_row is None or channel_row.state != TargetState.SENT
        if full:
            failed = {
                r.recipient: r.error or "failed"
                for r in rows
                if r.kind in (TargetKind.USER, TargetKind.TARGET) and r.state == TargetState.FAILED
            }
            paged = [r.recipient for r in rows if r.kind == TargetKind.USER and r.state == TargetState.SENT]
            via = ["PagerDuty"] if _sent(rows, TargetKind.PAGERDUTY) else []
        else:  # a retry: only what changed
            failed, paged, via = dict(attempt.failed), list(attempt.sent), list(attempt.via)
        report: PageReport | None = None
        if full or failed or paged or via or (attempt.final and outstanding):
            if attempt.final:
                failed.update(gave_up)
            report = PageReport(
                page=message,
                paged=paged,
                failed={t: e for t, e in failed.items() if t in users},
                unresolved={t: e for t, e in failed.items() if t not in users},
                via=via,
                retrying={} if attempt.final else outstanding,
                retry_in=None if attempt.final or not outstanding else attempt.retry_in,
                attempt=attempt.number,
            )
        error = None
        if report is not None:
            try:
                await self.pager.report_page(incident=incident, report=report)
            except ChatError as exc:
                error = f"channel mention failed: {exc.code or exc}"
                attempt.errors.append(error)
        if full:
            return await self._record(page_id, rows, TargetKind.CHANNEL, incident.channel_id, now=now, error=error)
        return rows

    async def _record(
        self,
        page_id: int,
        rows: list[PageTarget],
        kind: TargetKind,
        recipient: str,
        *,
        now: datetime,
        error: str | None,
    ) -> list[PageTarget]:
        """Store the channel mention's or PagerDuty's outcome (SENT, or PENDING with the error); returns the rows."""
        row = _row(rows, kind)
        state = TargetState.SENT if error is None else TargetState.PENDING
        async with self.db.session() as session:
            if row is None or row.id is None:
                new = [service.NewTarget(kind, recipient, state=state, error=error)]
                # If another sender of the page wrote it first, theirs stands and comes back.
                return await service.add_targets(session, page_id=page_id, new=new, now=now, existing=rows)
            await service.mark_target(session, target_id=row.id, state=state, now=now, error=error)
            stored = await session.get(PageTarget, row.id, populate_existing=True)
            if stored is None:
                return await service.targets(session, page_id=page_id)
        return [stored if r is row else r for r in rows]

    async def _finish(
        self,
        page: Page,
        token: str,
        incident: Incident,
        *,
        now: datetime,
        errors: list[str],
        stopped: str | None = None,
    ) -> bool:
        """Record the page as sent, with who was reached and who was not (and why).

        Lateness is measured at the first attempt (the oldest recipient row), not at this one.
        """
        assert page.id is not None
        async with self.db.session() as session:
            rows = await service.targets(session, page_id=page.id)
            delivery = _delivery(rows, attempts=page.attempts, stopped=stopped)
            delivery.errors = list(dict.fromkeys([*errors, *delivery.errors]))
            finished = await service.finish_page(
                session,
                page_id=page.id,
                token=token,
                now=now,
                delivery=delivery,
                escalation=self.config.escalation,
                severity=incident.severity,
                late_after=self.late_after_for(page),
                started_at=_first_attempt(rows, now),
            )
        if finished is None:
            log.error("page %s for %s was sent but our claim had been taken over", page.id, incident.ref)
            return False
        if self.on_page is not None:
            self.on_page(finished, delivery)
        following = policy.next_repeat(
            self.config.escalation,
            severity=incident.severity,
            level=page.level,
            repeat=page.repeat,
            due_at=utc(page.due_at),
        )
        if following is not None:
            self._wake([max(following.due_at, now)])  # finish_page planned it
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
        levels = policy.level_count(escalation, incident.severity)
        if page.level > levels:
            return f"{incident.severity} pages {levels} level(s)"
        if page.repeat and page.level != levels:
            return f"level {page.level} is no longer the last level for {incident.severity}"
        return None

    async def _resolve_one(self, target: str, now: datetime) -> _Resolved:
        """One bot.yml target → user IDs (a user group is read from Slack now, at send time)."""
        if target == "oncall":
            person = oncall_rules.on_call_at(self.config.oncall, now)
            if person is None:
                return _Resolved([], "nobody is on call: set oncall.rotation in bot.yml")
            if not person.startswith("@"):
                return _Resolved([person])
            target_handle = person
        elif target.startswith("S"):
            try:
                members = await self.pager.group_members(group_id=target)
            except ChatError as exc:
                return _Resolved([], f"could not read user group {target}: {exc.code or exc}", is_transient(exc))
            if not members:
                return _Resolved([], f"user group {target} has no members")
            return _Resolved(list(dict.fromkeys(members)))
        elif target.startswith("@"):
            target_handle = target
        else:
            return _Resolved([target])
        try:
            found = await self.pager.lookup_user(handle=target_handle)
        except ChatError as exc:
            return _Resolved([], f"could not look up {target_handle}: {exc.code or exc}", is_transient(exc))
        if found is None:
            return _Resolved([], f"no Slack user is called {target_handle}")
        return _Resolved([found])

    async def _deliver_reminder(self, reminder: Reminder, token: str) -> bool:
        assert reminder.id is not None
        now = self.clock.now()
        config = self.config.reminders
        async with self.db.session() as session:
            incident = await session.get(Incident, reminder.incident_id)
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
                        self._wake([due])
                        return False
                    next_due = now + config.status_update_every
            elif reminder.kind == ReminderKind.POSTMORTEM:
                if incident.is_open:
                    reason = "incident is open again"
                elif await service.postmortem_finished(session, incident_id=reminder.incident_id):
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
                await self._retry_later(reminder, token, error=error)
                return False
        async with self.db.session() as session:
            done = await service.finish_reminder(
                session,
                reminder_id=reminder.id,
                token=token,
                now=now,
                sent_to=mention if error is None else [],
                error=error,
                late_after=self.late_after_for(reminder),
                next_due=next_due,
            )
        if next_due is not None:
            self._wake([next_due])
        return done is not None and error is None

    async def _retry_later(self, row: Page | Reminder, token: str, *, error: str) -> bool:
        """Release the claimed row for another attempt after the back-off; give up after `max_attempts`.

        False only when the row was not ours to release any more (cancelled or taken over meanwhile).
        """
        if row.attempts >= self.max_attempts:
            await self._give_up(row, token, error=error)
            return True
        retry_at = self.clock.now() + self.retry_backoff * max(row.attempts, 1)
        model = type(row)
        assert row.id is not None
        try:
            async with self.db.session() as session:
                released = await service.release(
                    session, model=model, row_id=row.id, token=token, retry_at=retry_at, error=error
                )
        except Exception:
            log.exception("could not release %s %s; its lease will expire instead", model.__name__, row.id)
            return True
        if released:
            self._wake([retry_at])
        return released

    async def _give_up(self, row: Page | Reminder, token: str, *, error: str) -> None:
        """After `max_attempts` failures: record the failure (timeline) instead of retrying for ever."""
        assert row.id is not None
        error = f"gave up after {self.max_attempts} attempts: {error}"
        try:
            if isinstance(row, Page):
                async with self.db.session() as session:
                    incident = await session.get(Incident, row.incident_id)
                assert incident is not None
                await self._finish(row, token, incident, now=self.clock.now(), errors=[error])
                return
            async with self.db.session() as session:
                await service.finish_reminder(
                    session,
                    reminder_id=row.id,
                    token=token,
                    now=self.clock.now(),
                    sent_to=[],
                    error=error,
                    late_after=self.late_after_for(row),
                    next_due=None,
                )
        except Exception:
            log.exception("could not record the failure of %s %s", type(row).__name__, row.id)

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
        """Wake the scheduler, and a sweep in progress, for the earliest of `times`."""
        if times:
            self.wake(min(times))
            if self._sweep_woken is not None:
                self._sweep_woken(min(times))

    # --- reading -------------------------------------------------------------------------------

    def on_call(self, at: datetime | None = None) -> list[oncall_rules.LevelOnCall]:
        """Per level: who is paged now and after the next hand-off (`/incident oncall`)."""
        return oncall_rules.per_level(self.config.escalation, self.config.oncall, at or self.clock.now())

    async def pages(self, incident_id: int) -> list[Page]:
        async with self.db.session() as session:
            return await service.pages(session, incident_id=incident_id)


@dataclass
class _Attempt:
    """What one attempt at a page did, for the channel mention and the decision to retry."""

    number: int
    final: bool  # the last attempt: whoever is still pending is given up on
    sent: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # for good
    retrying: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    retry_in: timedelta = timedelta(0)


@dataclass
class _Resolved:
    """What one bot.yml target resolved to; `reason` says why nobody, `transient` if worth retrying."""

    users: list[str]
    reason: str | None = None
    transient: bool = False


def _channel_settled(incident: Incident, now: datetime) -> bool:
    """The channel exists and no setup run is still working on it (its end calls `channel_ready`)."""
    if not incident.channel_id:
        return False
    claimed = incident.setup_claimed_at
    return claimed is None or utc(claimed) < now - SETUP_LEASE


def _dm_in_flight(rows: list[PageTarget], now: datetime) -> bool:
    """Someone's DM is going out: a pending person under a live claim (cleared when the outcome is recorded)."""
    return any(
        row.kind == TargetKind.USER
        and row.state == TargetState.PENDING
        and row.claim_expires_at is not None
        and utc(row.claim_expires_at) > now
        for row in rows
    )


def _first_attempt(rows: list[PageTarget], now: datetime) -> datetime:
    """When the page was first tried: its oldest recipient row (none yet: this attempt, `now`)."""
    return min((utc(row.created_at) for row in rows), default=now)


def _unresolved(outcome: dict[str, tuple[TargetState, str | None]]) -> list[service.NewTarget]:
    """A row per bot.yml target that resolved to nobody, saying why (a transient reason stays pending)."""
    return [
        service.NewTarget(TargetKind.TARGET, target, state=state, error=reason)
        for target, (state, reason) in outcome.items()
        if reason is not None
    ]


def _row(rows: list[PageTarget], kind: TargetKind) -> PageTarget | None:
    return next((row for row in rows if row.kind == kind), None)


def _sent(rows: list[PageTarget], kind: TargetKind) -> bool:
    return any(row.kind == kind and row.state == TargetState.SENT for row in rows)


def _outstanding(rows: list[PageTarget]) -> dict[str, str]:
    """People (and bot.yml targets) still pending after a transient failure -> the last error."""
    return {
        row.recipient: row.error or "failed"
        for row in rows
        if row.kind in (TargetKind.USER, TargetKind.TARGET) and row.state == TargetState.PENDING
    }


def _reached(rows: list[PageTarget], *, channel: bool = False) -> bool:
    """Somebody got the page: a DM, PagerDuty, or (with `channel`) the mention in the incident channel."""
    kinds = {*service.DELIVERED_KINDS, *([TargetKind.CHANNEL] if channel else [])}
    return any(row.kind in kinds and row.state == TargetState.SENT for row in rows)


def _delivery(rows: list[PageTarget], *, attempts: int, stopped: str | None) -> service.Delivery:
    """The whole page's outcome, over every attempt, as the page row and the timeline record it."""
    delivery = service.Delivery()
    for row in rows:
        error = row.error or "failed"
        if row.state == TargetState.PENDING:
            error = f"not paged: {stopped}" if stopped else f"gave up after {attempts} attempts: {error}"
        if row.kind == TargetKind.USER:
            if row.state == TargetState.SENT:
                delivery.sent_to.append(row.recipient)
            else:
                delivery.failed[row.recipient] = error
        elif row.kind == TargetKind.TARGET:
            if row.state != TargetState.SENT:
                delivery.failed[row.recipient] = error
        elif row.kind == TargetKind.PAGERDUTY:
            if row.state == TargetState.SENT:
                delivery.via.append("PagerDuty")
            elif row.error:
                delivery.errors.append(row.error)
        elif row.kind == TargetKind.CHANNEL and row.state != TargetState.SENT and row.error:
            delivery.errors.append(row.error)
    return delivery
