"""What every part of the pager shares: engines, clock, chat port, bot.yml, timings and wake-ups.

Built once by `Escalator`; the senders (`pages.sending`, `reminders.sending`), the sweep and the
channel half all read it, so a setting (a back-off, a lease) is in one place.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.clock import Clock, utc
from bot.config import BotConfig
from bot.db import Database
from bot.escalation.models import Page, Reminder
from bot.escalation.pagerduty import PagerDuty
from bot.escalation.pages.records import Delivery
from bot.escalation.pages.writes import PageWrites
from bot.escalation.ports import Pager
from bot.exceptions import BotError
from bot.incidents.models import Incident
from bot.tasks import PagesFirst

log = logging.getLogger(__name__)


def _sleep_on(when: datetime) -> None:
    """No scheduler attached (tests, `python -m bot check`): nobody to wake."""


@dataclass(eq=False)
class Runtime:
    db: Database  # planning, channel halves, records: the requests' engine
    # A page's path from due to DM (due rows, recipients, claim, DM outcomes) runs on the pager's own
    # engine (`Database.for_pager()`), so in a storm it never waits for a connection behind the
    # declarations' sessions, nor behind the pages' own bookkeeping.
    send_db: Database
    clock: Clock
    pager: Pager
    config: BotConfig
    pagerduty: PagerDuty | None
    writes: PageWrites  # claims and DM outcomes, together
    priority: PagesFirst
    lease: timedelta
    late_after: timedelta
    max_attempts: int
    retry_backoff: timedelta
    on_page: Callable[[Page, Delivery], None] | None  # told of every finished page and how it went (metrics)
    # When this process started paging (set by the scheduler's start): pages due before were missed.
    up_since: datetime | None = None
    # Set by the scheduler: called with a due time whenever a row is planned or moved.
    wake: Callable[[datetime], None] = _sleep_on
    sweep_woken: Callable[[datetime], None] | None = None  # a sweep in progress, told of new rows
    # Per incident, while anyone holds or awaits it (`async with` keeps it alive).
    _turns: weakref.WeakValueDictionary[int, asyncio.Lock] = field(default_factory=weakref.WeakValueDictionary)

    def turn(self, incident_id: int) -> asyncio.Lock:
        """One incident's pages' channel halves and its channel catch-up, one at a time (in this process)."""
        lock = self._turns.get(incident_id)
        if lock is None:
            lock = self._turns[incident_id] = asyncio.Lock()
        return lock

    def wake_for(self, times: list[datetime]) -> None:
        """Wake the scheduler, and a sweep in progress, for the earliest of `times`."""
        if times:
            self.wake(min(times))
            if self.sweep_woken is not None:
                self.sweep_woken(min(times))

    def late_after_for(self, row: Page | Reminder) -> timedelta:
        """No tolerance for what fell due while the bot was down (README); `late_after` otherwise."""
        if self.up_since is not None and utc(row.due_at) < self.up_since:
            return timedelta(0)
        return self.late_after

    def retry_in(self, attempts: int) -> timedelta:
        """The back-off after attempt number `attempts`: 30 s, then 60 s, ..."""
        return self.retry_backoff * max(attempts, 1)

    async def call_pagerduty(self, action: str, incident: Incident) -> BotError | None:
        """Best effort: PagerDuty is an extra channel, never a reason to lose the Slack page."""
        if self.pagerduty is None:
            return None
        try:
            await getattr(self.pagerduty, action)(incident)
        except BotError as exc:
            log.warning("pagerduty %s for %s failed: %s", action, incident.ref, exc)
            return exc
        return None
