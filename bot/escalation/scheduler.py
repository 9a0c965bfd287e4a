"""Wakes the process when a page or reminder is due. The database, not this, decides what is due.

APScheduler (3.x `AsyncIOScheduler`) holds exactly two jobs:

* `escalation-wake`, a one-off date job a second before the earliest due time (or claim expiry) in the
  database, moved whenever something earlier is planned and re-armed after every run;
* `escalation-sweep`, every 30 s: a safety net for a lost wake-up and for rows planned by another
  replica, which this process has no timer for.

The sweep (and the start) first plans incidents a crash left unplanned (`Escalator.recover`),
this replica's or another's, so a lost plan costs a sweep, not the incident's pages. Wake-ups skip
that: they are on the clock of a due page.

Each run sends everything due (`Escalator.run_due`), each row behind its own claim, so the wake,
the sweep, a signal handler and another replica may all run at once without sending anything
twice. Sweeps are the expensive part (a claim attempt per due row), so this process runs at most
one at a time: a run requested while one is in progress waits, and all such requests share one
more sweep after it (nothing planned meanwhile is missed, and a burst of wake-ups costs two
sweeps, not one each). Signal handlers never sweep; they send only their own incident's rows.
On start the scheduler runs at once, which sends pages that fell due while the bot was down
(marked late). No job state is kept in APScheduler's own job store: a restart rebuilds everything
from the rows.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.escalation.flows import Escalator
from bot.escalation.sweep import RunReport
from bot.tasks import RunGate

log = logging.getLogger(__name__)

WAKE_JOB = "escalation-wake"
SWEEP_JOB = "escalation-sweep"
# `run()` serialises and shares sweeps itself, so APScheduler need not limit a job's instances. At
# one, every wake-up that fired during a sweep was skipped with a WARNING (the sweep's re-arm then
# caught its page, at least `min_gap` later): in a storm the log said jobs were being skipped.
OVERLAPPING_RUNS = 100


class EscalationScheduler:
    def __init__(
        self,
        escalator: Escalator,
        *,
        sweep_every: timedelta = timedelta(seconds=30),
        min_gap: timedelta = timedelta(milliseconds=200),
    ) -> None:
        self.escalator = escalator
        self.sweep_every = sweep_every
        self.min_gap = min_gap  # never re-arm sooner than this: no hot loop if a row stays due
        self._scheduler: AsyncIOScheduler | None = None
        self._gate = RunGate()
        # Sweeps requested, and requests covered by the last finished sweep (it started after them).
        self._requested = 0
        self._covered = 0
        self._last_report = RunReport()
        self.next_wake: datetime | None = None
        self.last_run_at: datetime | None = None
        self.last_error: str | None = None
        self.runs = 0

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    async def start(self) -> RunReport:
        """Start the timers, plan what a crash lost, and send everything already due."""
        if self.escalator.up_since is None:  # what fell due before this moment fell due while we were down
            self.escalator.up_since = self.escalator.clock.now()
        self._gate.open()
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._scheduler.add_job(
                self.safety_sweep,
                "interval",
                seconds=self.sweep_every.total_seconds(),
                id=SWEEP_JOB,
                coalesce=True,
                max_instances=OVERLAPPING_RUNS,
                misfire_grace_time=None,
            )
            self._scheduler.start()
        self.escalator.wake = self.wake_at
        return await self.safety_sweep()

    async def stop(self) -> None:
        self.escalator.wake = lambda when: None
        await self._gate.close()  # a run in progress finishes its claim → send → mark first
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None
        self.next_wake = None

    def wake_at(self, when: datetime) -> None:
        """Make sure the process wakes no later than `when` (earlier timers win).

        `when` is on the escalator's clock; APScheduler runs on the wall clock, so the wake-up is
        scheduled after the same delay (identical in production, and a FakeClock stays consistent).
        """
        if self._scheduler is None or not self._scheduler.running:
            return
        now = self.escalator.clock.now()
        when = max(when, now + self.min_gap)
        if self.next_wake is not None and now < self.next_wake <= when:
            return
        self.next_wake = when
        # Half the sweep's look-ahead early: it has read the rows when the first falls due, and
        # starts each from memory then (a read at the due time waits behind a storm's work).
        at = max(when - self.escalator.look_ahead / 2, now + self.min_gap)
        self._scheduler.add_job(
            self.run,
            "date",
            run_date=datetime.now(UTC) + (at - now),
            id=WAKE_JOB,
            replace_existing=True,
            coalesce=True,
            max_instances=OVERLAPPING_RUNS,
            misfire_grace_time=None,
        )

    async def safety_sweep(self) -> RunReport:
        """The 30-second job: plan what a crash lost, then send what is due."""
        if self._gate.closed:
            return self._last_report
        try:
            recovered = await self.escalator.recover()
            if recovered:
                log.warning("planned the escalation of %d incident(s) a crash left unplanned", recovered)
        except Exception:
            log.exception("planning what a crash lost failed; the next sweep tries again")
        return await self.run()

    async def run(self) -> RunReport:
        """Send what is due, then arm the wake-up for the next due row.

        One sweep at a time: a call made while one runs waits for the next sweep, which starts after
        it (so it sees everything planned before the call) and is shared by every call that waited.
        """
        self._requested += 1
        request = self._requested
        async with self._gate.turn() as open_:
            if not open_ or self._covered >= request:
                return self._last_report  # a sweep that started after this request has just run
            self._covered = self._requested
            self._last_report = await self._sweep()
            return self._last_report

    async def _sweep(self) -> RunReport:
        report = RunReport()
        try:
            report = await self.escalator.run_due()
            self.last_error = None
        except Exception as exc:
            # The database may be down; the sweep tries again.
            log.exception("escalation run failed")
            self.last_error = f"{type(exc).__name__}: {exc}"
        self.runs += 1
        self.last_run_at = datetime.now(UTC)
        try:
            due = await self.escalator.next_due()
        except Exception:
            log.exception("could not read the next due time; the sweep will catch up")
            due = None
        # The database has the full picture now: drop wake-ups armed during the run.
        self.next_wake = None
        if due is not None:
            self.wake_at(due)
        return report
