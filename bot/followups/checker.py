"""Closed issues checked on a schedule: a timer row (`followup_checks`), claimed once across replicas.

APScheduler only wakes the process: a date job at the row's due time and an interval wake-up (at
most a minute apart) for a due time another replica moved or a lost wake-up. Whoever's conditional
UPDATE claims the due row asks the tracker (`flows.refresh`) and plans the next run
`issue_tracker.check_every` later. At start the row is made if missing, or its due time rescheduled:
a run that fell due while the bot was down goes at once.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.deps import Deps
from bot.followups import sweeps, unread
from bot.followups.flows import Checked, check_issues
from bot.followups.ports import TrackerError
from bot.tasks import RunGate

log = logging.getLogger(__name__)

SWEEP = "closed-issues"
WAKE_EVERY = timedelta(minutes=1)
# Longer than a sweep of 200 follow-ups through a rate-limiting tracker takes; a dead holder's claim
# ends with it (each follow-up's own check claim keeps a late second sweep from asking twice).
SWEEP_LEASE = timedelta(minutes=10)


class ClosedIssueChecker:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        config = deps.settings.config.issue_tracker
        self.every = config.check_every if config else timedelta(minutes=15)
        self._scheduler: AsyncIOScheduler | None = None
        self._gate = RunGate()

    async def start(self) -> None:
        self._gate.open()
        async with self.deps.db.session() as session:
            due = await sweeps.plan_check(session, name=SWEEP, due_at=self.deps.clock.now() + self.every)
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(timezone=UTC)
            wake = min(self.every, WAKE_EVERY).total_seconds()
            self._scheduler.add_job(self.run_due, "interval", seconds=wake, id="followup-check-sweep", coalesce=True)
            self._scheduler.start()
        self.wake_at(due)

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    async def stop(self) -> None:
        await self._gate.close()  # a sweep in progress is recorded (and the next planned) first
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    async def run_due(self) -> bool:
        """Run the sweep if it is due and this process claims it; True when it ran here."""
        async with self._gate.turn() as open_:
            if not open_:
                return False
            async with self.deps.db.session() as session:
                token = await sweeps.claim_sweep(session, name=SWEEP, now=self.deps.clock.now(), lease=SWEEP_LEASE)
            if token is None:
                await self._rearm()
                return False
            error = None
            try:
                checked = await check_issues(self.deps)
                await self._note(checked)
                failure = checked.failure()
                if failure is not None:
                    raise failure
                if checked.changed:
                    log.info("%d follow-up(s) changed by their issues (closed, reopened or gone)", checked.changed)
            except TrackerError as exc:  # the tracker is down or refuses the key: no traceback to add
                log.warning("checking follow-ups' issues failed (%s); trying again next time", exc)
                error = str(exc)
            except Exception as exc:
                log.exception("checking follow-ups' issues failed; trying again next time")
                error = f"{type(exc).__name__}: {exc}"
            now = self.deps.clock.now()
            async with self.deps.db.session() as session:
                await sweeps.finish_sweep(
                    session, name=SWEEP, token=token, now=now, next_due=now + self.every, error=error
                )
            self.wake_at(now + self.every)
            return True

    async def _note(self, checked: Checked) -> None:
        """Extend or end the streak of sweeps that left issues unread (`unread.py`). A sweep that did not ask
        about every watched issue (rate-limited, or more than it asks about) and read all it asked about ends
        the streak only when its last unread sweep is over `unread.UNREAD_FOR` old: the unread issues may
        simply not have been among those asked about (with over 200 watched, each sweep asks about some)."""
        now = self.deps.clock.now()
        async with self.deps.db.session() as session:
            if checked.unread:
                count, last = len(checked.unread), str(checked.unread[-1])
                await unread.note_unread(session, sweep=SWEEP, now=now, count=count, error=last)
            else:
                since = now - unread.UNREAD_FOR if checked.partial else None
                await unread.all_read(session, sweep=SWEEP, unread_before=since)

    def wake_at(self, when: datetime) -> None:
        if self._scheduler is None or not self._scheduler.running:
            return
        delay = max(when - self.deps.clock.now(), timedelta(milliseconds=50))
        self._scheduler.add_job(
            self.run_due,
            "date",
            run_date=datetime.now(UTC) + delay,
            id="followup-check-wake",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _rearm(self) -> None:
        async with self.deps.db.session() as session:
            due = await sweeps.next_sweep(session, name=SWEEP)
        if due is not None:
            self.wake_at(due)
