"""The status page while the bot runs: its configuration, the cached public snapshot, the Statuspage
client and the timers' wake-ups. One instance, `deps.status_page`.

Readers are served the snapshot in memory and never touch the database: a status page is read
hardest during an outage, while the bot is paging. The snapshot is rebuilt when something public
changes (a publish, a resolve, a probe) and every 30 s on a timer of its own, which also picks up what
another replica published. Rebuilds are coalesced: whoever asks while one runs shares the next one.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from bot.config import StatusPageConfig
from bot.incidents.models import Incident
from bot.statuspage import flows, health_days, layout, outbox, probes, reminding, service, timers
from bot.statuspage.atlassian import Statuspage
from bot.statuspage.models import PublicReminder, StatuspageSync
from bot.statuspage.ports import PublicChat
from bot.statuspage.snapshot import Snapshot, build
from bot.tasks import RunGate

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(seconds=30)
# The resolving process publishes the resolution within moments; the sweep only takes what it left behind.
RESOLUTION_GRACE = timedelta(seconds=10)


class StatusPage:
    def __init__(self, deps: Deps, config: StatusPageConfig, *, statuspage: Statuspage | None = None) -> None:
        self.deps = deps
        self.config = config
        self.statuspage = statuspage
        self.remind_every = config.remind_every or deps.settings.config.reminders.status_update_every
        self.snapshot: Snapshot | None = None
        self._chat: PublicChat | None = None
        self._lock = asyncio.Lock()
        self._requested = 0
        self._covered = 0
        self._layout_since: datetime | None = None  # the page's oldest date (`layout.py`), read at the first build
        self._scheduler: AsyncIOScheduler | None = None
        self._sweeps = RunGate()  # sweeps and wake-ups, one at a time
        self._probes = RunGate()  # apart: a health endpoint that hangs in an outage never holds up a publish
        self._rebuilds = RunGate()  # apart too: a sweep waiting on Slack or Statuspage never holds up the page
        self._next_wake: datetime | None = None
        self.on_rebuild: list[Callable[[Snapshot], None]] = []

    @classmethod
    def from_deps(cls, deps: Deps, config: StatusPageConfig) -> StatusPage:
        client = None
        target = config.statuspage
        if target is not None:
            key = os.environ.get(target.api_key_env, "").strip()
            if key:
                client = Statuspage(
                    http=deps.http,
                    base_url=deps.settings.statuspage_api_url,
                    page_id=target.page_id,
                    api_key=key,
                    api_key_env=target.api_key_env,
                )
            else:
                log.error("status_page.statuspage: %s is not set; nothing is sent to Statuspage", target.api_key_env)
        return cls(deps, config, statuspage=client)

    # --- wiring ----------------------------------------------------------------------------

    @property
    def syncing(self) -> bool:
        return self.statuspage is not None

    @property
    def stale_after(self) -> timedelta:
        """How long a probe's outcome counts: three missed probes and the component is shown unprobed."""
        return self.config.probe_every * 3

    @property
    def chat(self) -> PublicChat:
        """Set by the Slack adapters when the app is built (`bot/slack/adapters/__init__.py`)."""
        if self._chat is None:
            raise RuntimeError("the status page's chat adapter is not set up")
        return self._chat

    @chat.setter
    def chat(self, value: PublicChat) -> None:
        self._chat = value

    def components_of(self, incident: Incident) -> list[str]:
        """The public components behind the incident's service (none when it names none)."""
        if not incident.service:
            return []
        return [name for name, services in self.config.components.items() if incident.service in services]

    def statuspage_ids(self, component: str) -> list[str]:
        target = self.config.statuspage
        if target is None:
            return []
        ids = [target.components[s] for s in self.config.components.get(component, []) if s in target.components]
        return sorted(set(ids))

    # --- the snapshot ----------------------------------------------------------------------

    async def refresh(self) -> Snapshot:
        """Rebuild the snapshot; a call made during a rebuild waits for (and shares) the next one."""
        self._requested += 1
        request = self._requested
        async with self._lock:
            if self._covered >= request and self.snapshot is not None:
                return self.snapshot
            self._covered = self._requested
            now = self.deps.clock.now()
            async with self.deps.db.session() as session:
                rows = await service.public_rows(session, now=now)
                days = await health_days.component_days(session, since=(now - timedelta(days=89)).date())
                left_at = await service.last_departure(session, now=now)
                if self._layout_since is None:  # the configuration is read once: so is its date
                    shape = layout.digest(self.config, public_url=self.deps.settings.public_url)
                    self._layout_since = await layout.first_built(session, layout=shape, now=now)
            self.snapshot = await asyncio.to_thread(
                build,
                config=self.config,
                rows=rows,
                days=days,
                now=now,
                stale_after=self.stale_after,
                public_url=self.deps.settings.public_url,
                left_at=left_at,
                layout_since=self._layout_since,
            )
            for hook in self.on_rebuild:
                hook(self.snapshot)
            return self.snapshot

    async def current(self) -> Snapshot:
        return self.snapshot if self.snapshot is not None else await self.refresh()

    # --- timers ----------------------------------------------------------------------------

    async def start(self) -> None:
        self._sweeps.open()
        self._probes.open()
        self._rebuilds.open()
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._scheduler.add_job(
            self._safe(self.sweep, self._sweeps),
            "interval",
            seconds=SWEEP_EVERY.total_seconds(),
            id="status-page-sweep",
            coalesce=True,
            max_instances=1,
        )
        # The sweep rebuilds too, but it first sends reminders and Statuspage updates, which wait out Slack's and
        # Statuspage's throttles in an outage: another replica's publish must not wait behind them.
        self._scheduler.add_job(
            self._safe(self.refresh, self._rebuilds),
            "interval",
            seconds=SWEEP_EVERY.total_seconds(),
            id="status-page-rebuild",
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.add_job(
            self._safe(self.probe, self._probes),
            "interval",
            seconds=self.config.probe_every.total_seconds(),
            id="status-page-probe",
            coalesce=True,
            max_instances=1,
        )
        self._scheduler.start()
        # Rescheduled from the rows: incidents that should be reminded, then everything already due.
        self.deps.background.spawn(self._catch_up(), "status page: catch up")

    async def _catch_up(self) -> None:
        async with self.deps.db.session() as session:
            missing = await service.open_incidents_without_reminder(session)
        for incident in missing:
            await flows.plan_reminder(self.deps, incident_id=incident.id or 0)
        await self._safe(self.sweep, self._sweeps)()
        await self._safe(self.probe, self._probes)()

    async def stop(self) -> None:
        # A publish in progress reaches Statuspage and is recorded first; so is a probe's count.
        await asyncio.gather(self._sweeps.close(), self._probes.close(), self._rebuilds.close())
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def _safe(self, work: Callable[[], Any], gate: RunGate) -> Callable[[], Any]:
        """A timer's run: one of its kind at a time, none once stopped, a failure logged (the next run retries)."""

        async def run() -> None:
            async with gate.turn() as open_:
                if not open_:
                    return
                try:
                    await work()
                except Exception:
                    log.exception("status page: %s failed", getattr(work, "__name__", work))

        return run

    def wake_at(self, when: datetime) -> None:
        """Run a sweep no later than `when` (on the bot's clock; the delay is what APScheduler sees)."""
        if self._scheduler is None or not self._scheduler.running:
            return
        now = self.deps.clock.now()
        when = max(when, now + timedelta(milliseconds=200))
        if self._next_wake is not None and now < self._next_wake <= when:
            return
        self._next_wake = when
        self._scheduler.add_job(
            self._safe(self.sweep, self._sweeps),
            "date",
            run_date=datetime.now(UTC) + (when - now),
            id="status-page-wake",
            replace_existing=True,
            misfire_grace_time=None,
        )

    async def sweep(self) -> None:
        """Due reminders, lost resolutions, due Statuspage updates; then the snapshot (another replica may
        have published)."""
        self._next_wake = None
        now = self.deps.clock.now()
        async with self.deps.db.session() as session:
            reminders = await timers.due(session, model=PublicReminder, now=now)
            resolved = await service.unpublished_resolutions(session, resolved_before=now - RESOLUTION_GRACE)
        for reminder_id, _ in reminders:
            await reminding.send_reminder(self.deps, reminder_id=reminder_id)
        for incident_id in resolved:
            log.warning("INC-%s was resolved but its resolution never published (a crash?): publishing", incident_id)
            await flows.incident_resolved(self.deps, incident_id=incident_id, actor=None)
        await self.sync_due()
        await self.refresh()
        async with self.deps.db.session() as session:
            nxt = [
                await timers.next_free(session, model=PublicReminder),
                await timers.next_free(session, model=StatuspageSync),
            ]
        for when in nxt:
            if when is not None:
                self.wake_at(when)

    async def sync_due(self) -> None:
        """Send what the outbox holds, in order per incident, until nothing more is due."""
        if self.statuspage is None:
            return
        while True:
            async with self.deps.db.session() as session:
                ids = await service.due_syncs(session, now=self.deps.clock.now())
            sent = [await outbox.sync_one(self.deps, row_id=row_id) for row_id in ids]
            if not any(sent):
                return

    async def probe(self) -> None:
        await probes.probe(self.deps)
