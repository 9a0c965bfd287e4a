"""Sending what is due: one incident's rows (`send_due`, from a signal handler), or every due row
(`run_due`, a sweep, run only from `EscalationScheduler.run`, one at a time).

A sweep sends pages as they fall due: up to `concurrency` pages sending their DMs at once, each
incident's in order. A page holds its slot (and its incident's place in line) until its DMs are
out, not until its channel mention is recorded, and due rows are read again as soon as a slot
frees or the next row falls due, so in a storm a page starts the moment it is due. The sweep lasts
while there is something to send, so a page that falls due meanwhile joins it.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime

from bot.escalation.pages.queries import due_pages, next_page_due
from bot.escalation.pages.sending import PageSender
from bot.escalation.reminders.rows import due_reminders
from bot.escalation.reminders.sending import ReminderSender
from bot.escalation.runtime import Runtime


@dataclass
class RunReport:
    pages: int = 0
    reminders: int = 0


class Sweep:
    def __init__(self, rt: Runtime, pages: PageSender, reminders: ReminderSender, *, concurrency: int) -> None:
        self.rt = rt
        self.pages = pages
        self.reminders = reminders
        self.concurrency = max(concurrency, 1)  # pages whose DMs one sweep sends at once

    async def send_due(self, incident_id: int) -> RunReport:
        """Send this incident's rows that are due now (a declaration's level 1, a raised severity's levels)."""
        report = RunReport()
        now = self.rt.clock.now()
        async with self.rt.db.session() as session:
            due = await due_pages(session, now=now, incident_id=incident_id)
            reminder_ids = await due_reminders(session, now=now, incident_id=incident_id)
        for page_id, _ in due:
            if await self.pages.send_page(page_id):
                report.pages += 1
        for reminder_id in reminder_ids:
            if await self.reminders.send_reminder(reminder_id):
                report.reminders += 1
        return report

    async def run_due(self) -> RunReport:
        """Send every page and reminder that is due and not held by another process."""
        report = RunReport()
        report.pages = await _Wave(self.rt, self.pages, self.concurrency).run()
        batch = 50
        while True:
            async with self.rt.db.session() as session:
                ids = await due_reminders(session, now=self.rt.clock.now(), limit=batch)
            for reminder_id in ids:
                if await self.reminders.send_reminder(reminder_id):
                    report.reminders += 1
            if len(ids) < batch:
                break
        return report


class _Wave:
    """One sweep's pages, started as they fall due; `run` returns how many were recorded as sent."""

    def __init__(self, rt: Runtime, pages: PageSender, concurrency: int) -> None:
        self.rt = rt
        self.pages = pages
        self.concurrency = concurrency
        self.loop = asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[bool]] = set()
        self.dming: dict[int, asyncio.Task[bool]] = {}  # incident -> its page whose DMs are going out
        self.changed = asyncio.Event()
        self.sent = 0
        self.failure: BaseException | None = None
        self.next_at: datetime | None = None
        self.waiting = True  # due rows were left for lack of a slot, or behind their incident's page

    async def run(self) -> int:
        outer, self.rt.sweep_woken = self.rt.sweep_woken, self.woken
        try:
            while True:
                self.changed.clear()  # before looking: whatever happens from here on wakes the wait below
                self._reap()
                await self._start_due()
                if not self.tasks:
                    break
                if not self.changed.is_set():
                    await self._wait()
        finally:
            self.rt.sweep_woken = outer
            if self.tasks:  # cancelled (shutdown): sends under way finish their claim -> deliver -> mark
                await asyncio.wait(self.tasks)
        if self.failure is not None:
            raise self.failure  # after every send in progress has finished
        return self.sent

    def woken(self, when: datetime) -> None:
        """A row was planned or moved while the sweep runs: look again by `when`."""
        if self.next_at is None or when < self.next_at:
            self.next_at = when
            self.changed.set()

    def _reap(self) -> None:
        for task in [t for t in self.tasks if t.done()]:
            self.tasks.discard(task)
            if task.exception() is not None:
                self.failure = self.failure or task.exception()  # the database is down, most likely
            elif task.result():
                self.sent += 1

    async def _start_due(self) -> None:
        now = self.rt.clock.now()
        free = min(self.concurrency - len(self.dming), self.concurrency * 4 - len(self.tasks))
        looking = self.waiting or (self.next_at is not None and self.next_at <= now)
        if self.failure is not None or free <= 0 or not looking:
            return
        async with self.rt.send_db.session() as session:
            due = await due_pages(session, now=now, limit=self.concurrency * 4)
            self.next_at = await next_page_due(session, after=now)
        self.waiting = False
        for page_id, incident_id in due:
            if incident_id in self.dming or free <= 0:
                self.waiting = True
                continue
            self._start(page_id, incident_id)
            free -= 1

    def _start(self, page_id: int, incident_id: int) -> None:
        def dms_out(*_: object) -> None:  # when the DMs are out, and again when the task is done
            if self.dming.get(incident_id) is task:
                del self.dming[incident_id]  # the incident's next page may start
            self.changed.set()

        task = self.loop.create_task(self.pages.send_page(page_id, dms_out=dms_out))
        self.dming[incident_id] = task
        task.add_done_callback(dms_out)
        self.tasks.add(task)

    async def _wait(self) -> None:
        # Look at the clock again by then at the latest: rows due much later are the scheduler's.
        left = 1.0 if self.next_at is None else (self.next_at - self.rt.clock.now()).total_seconds()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), min(max(left, 0.02), 1.0))
