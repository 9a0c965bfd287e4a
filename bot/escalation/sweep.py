"""Sending what is due: one incident's rows (`send_due`, from a signal handler), or every due row
(`run_due`, a sweep, run only from `EscalationScheduler.run`, one at a time).

A sweep sends pages as they fall due: up to `concurrency` pages sending their DMs at once, each
incident's in order. It reads the pages free to claim within the next `look_ahead` (two seconds)
and starts each one from memory the moment it is due, so the sweep's read never stands between a
page's due time and its claim (the page reads only its own row and incident, `PageSender`): in a storm
of declarations, a read waits its turn on a busy event loop and pool, and every page falling due
meanwhile would wait with it. What it remembers is only a hint;
the claim decides, so a page acknowledged or moved since the read fails its claim and is not sent.
It reads again half a look-ahead before its memory runs out, and at once when a row is planned
inside the window it read (`woken`); it reads beside the starts, never in front of them. A page
holds its slot (and its incident's place in line) until its DMs are out, not until its channel
mention is recorded. The sweep lasts while something is being sent or is due within the window it
read, so a page that falls due meanwhile joins it; it stops waiting for a remembered page once the
look-ahead has passed on the event loop's own clock (an injected clock that tests hold still never
reaches it).
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.escalation.pages.queries import due_pages, pages_free_by
from bot.escalation.pages.sending import PageSender
from bot.escalation.reminders.rows import due_reminders
from bot.escalation.reminders.sending import ReminderSender
from bot.escalation.runtime import Runtime

# How far ahead a sweep reads; the scheduler wakes it half that early. In a storm a read took up to
# 1 s on PostgreSQL (benchmarks/README.md), so the first one must begin a second before the first page.
LOOK_AHEAD = timedelta(seconds=2)


@dataclass
class RunReport:
    pages: int = 0
    reminders: int = 0


class Sweep:
    def __init__(
        self,
        rt: Runtime,
        pages: PageSender,
        reminders: ReminderSender,
        *,
        concurrency: int,
        look_ahead: timedelta = LOOK_AHEAD,
    ) -> None:
        self.rt = rt
        self.pages = pages
        self.reminders = reminders
        self.concurrency = max(concurrency, 1)  # pages whose DMs one sweep sends at once
        self.look_ahead = look_ahead

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
        report.pages = await _Wave(self.rt, self.pages, self.concurrency, self.look_ahead).run()
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

    def __init__(self, rt: Runtime, pages: PageSender, concurrency: int, look_ahead: timedelta) -> None:
        self.rt = rt
        self.pages = pages
        self.concurrency = concurrency
        self.look_ahead = look_ahead
        self.loop = asyncio.get_running_loop()
        self.tasks: dict[asyncio.Task[bool], int] = {}  # in flight -> its page
        self.dming: dict[int, asyncio.Task[bool]] = {}  # incident -> its page whose DMs are going out
        self.known: list[tuple[datetime, int, int]] = []  # (free at, page, incident) read, not started, in order
        self.known_until: datetime | None = None  # `known` holds every page free before this; None: read now
        self.cut_short = False  # the last read hit its limit: more rows may be free before `known_until`
        self.news = False  # since the last read began, a page's task ended or a row was planned
        self.reading: asyncio.Task[None] | None = None
        self.reads = 0  # reads begun
        self.settled: dict[int, int] = {}  # page -> reads begun when its task was done
        self.woken_at: datetime | None = None  # the earliest row planned while a read was under way
        self.read_at = 0.0  # the event loop's time of the last read
        self.changed = asyncio.Event()
        self.sent = 0
        self.failure: BaseException | None = None

    async def run(self) -> int:
        outer, self.rt.sweep_woken = self.rt.sweep_woken, self.woken
        try:
            while True:
                self.changed.clear()  # before looking: whatever happens from here on wakes the wait below
                self._reap()
                self._read_soon()
                self._start_due()
                if not self.tasks and self.reading is None and not self._expecting():
                    break
                if not self.changed.is_set():
                    await self._wait()
        finally:
            self.rt.sweep_woken = outer
            if self.reading is not None:  # cancelled (shutdown) while reading
                self.reading.cancel()
                await asyncio.wait({self.reading})
            if self.tasks:  # cancelled (shutdown): sends under way finish their claim -> deliver -> mark
                await asyncio.wait(self.tasks)
        if self.failure is not None:
            raise self.failure  # after every send in progress has finished
        return self.sent

    def woken(self, when: datetime) -> None:
        """A row was planned or moved while the sweep runs: read again if it falls inside what was read."""
        self.news = True
        if self.reading is not None:
            self.woken_at = when if self.woken_at is None else min(self.woken_at, when)
        elif self.known_until is not None and when < self.known_until:
            self.known_until = when
            self.changed.set()

    def _reap(self) -> None:
        for task in [t for t in self.tasks if t.done()]:
            self.settled[self.tasks.pop(task)] = self.reads
            self.news = True
            if task.exception() is not None:
                self.failure = self.failure or task.exception()  # the database is down, most likely
            elif task.result():
                self.sent += 1

    def _free(self) -> int:
        return min(self.concurrency - len(self.dming), self.concurrency * 4 - len(self.tasks))

    def _expecting(self) -> bool:
        """Remembered pages are still to fall due within the window read (on the event loop's clock)."""
        window = self.look_ahead.total_seconds() + 0.1
        return self.failure is None and bool(self.known) and self.loop.time() - self.read_at < window

    def _read_soon(self) -> None:
        """Read beside the starts, not before them: under load a read takes hundreds of ms."""
        now = self.rt.clock.now()
        if self.reading is not None or self.failure is not None or self._free() <= 0:
            return
        if self.known_until is not None and now + self.look_ahead / 2 < self.known_until:
            return
        if self.cut_short and not self.news:
            return  # a backlog: the same rows would come back; read again once something changed
        self.reads += 1
        self.news = False
        self.woken_at = None
        self.reading = self.loop.create_task(self._read(now, self.reads))
        self.reading.add_done_callback(self._read_done)

    async def _read(self, now: datetime, read: int) -> None:
        limit = self.concurrency * 4
        async with self.rt.send_db.session() as session:
            rows = await pages_free_by(session, until=now + self.look_ahead, limit=limit)
        self.read_at = self.loop.time()
        # A page started by this sweep may not have been claimed yet when the rows were read: only one
        # whose send was over before the read began is free to start again (a retry, a lost claim).
        running = set(self.tasks.values())
        self.known = [row for row in rows if row[1] not in running and self.settled.get(row[1], -1) < read]
        # Cut short (a backlog): complete only up to the last row read, so read again when that is near.
        self.cut_short = len(rows) == limit
        known_until = rows[-1][0] if self.cut_short else now + self.look_ahead
        self.known_until = known_until if self.woken_at is None else min(known_until, self.woken_at)

    def _read_done(self, task: asyncio.Task[None]) -> None:
        self.reading = None
        if not task.cancelled() and task.exception() is not None:
            self.failure = self.failure or task.exception()
        self.changed.set()

    def _start_due(self) -> None:
        now, free = self.rt.clock.now(), self._free()
        left: list[tuple[datetime, int, int]] = []
        for row in self.known:
            at, page_id, incident_id = row
            if at > now or free <= 0 or incident_id in self.dming:
                left.append(row)  # not due yet, no slot, or behind its incident's page: later
                continue
            self._start(page_id, incident_id)
            free -= 1
        self.known = left

    def _start(self, page_id: int, incident_id: int) -> None:
        def dms_out(*_: object) -> None:  # when the DMs are out, and again when the task is done
            if self.dming.get(incident_id) is task:
                del self.dming[incident_id]  # the incident's next page may start
            self.changed.set()

        task = self.loop.create_task(self.pages.send_page(page_id, dms_out=dms_out))
        self.dming[incident_id] = task
        task.add_done_callback(dms_out)
        self.tasks[task] = page_id

    async def _wait(self) -> None:
        # Until the next remembered page falls due, or it is time to read again; a second at most.
        now, times = self.rt.clock.now(), []
        if self._free() > 0:  # else a slot freeing wakes it
            times = [at for at, _, incident_id in self.known if at > now and incident_id not in self.dming]
            if self.known_until is not None and self.reading is None and not self.cut_short:
                times.append(self.known_until - self.look_ahead / 2)  # else the read's end, or a page's, wakes it
        left = min(((at - now).total_seconds() for at in times), default=1.0)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.changed.wait(), min(max(left, 0.005), 1.0))
