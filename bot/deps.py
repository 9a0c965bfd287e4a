"""The objects every flow needs, built once at start-up by `bot.wiring` and passed down.

Everything that talks to the outside world is here, so a test swaps it at the boundary: the clock,
the shared `httpx.AsyncClient` (health checks and deploy platforms), the database, and the chat
adapters. `bot.wiring` fills it in one direction: infrastructure, then the Slack client and its
adapters, then the domain services (each given the adapters it needs), then the listeners. Every
service is a typed attribute; one a build has not wired (a domain switched off in bot.yml) is None.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import httpx

from bot.clock import Clock
from bot.db import Database
from bot.observability import Metrics
from bot.settings import Settings
from bot.signals import Bus
from bot.tasks import Background, KeyedLocks, PagesFirst

if TYPE_CHECKING:
    from aiohttp import web
    from slack_sdk.web.async_client import AsyncWebClient

    from bot.alerts.flows import AlertProcessor
    from bot.alerts.ports import AlertChat
    from bot.archive.flows import Archiver
    from bot.archive.ports import ArchiveChat
    from bot.escalation.flows import Escalator
    from bot.escalation.scheduler import EscalationScheduler
    from bot.followups.checker import ClosedIssueChecker
    from bot.followups.ports import IssueTracker
    from bot.incidents.access import Access
    from bot.incidents.ports import IncidentChat
    from bot.incidents.recovery import Sweep
    from bot.ops.runtime import OpsRuntime
    from bot.ops.service import Directory
    from bot.playbooks.ports import PlaybookChat
    from bot.playbooks.registry import PlaybookRegistry
    from bot.postmortem.ports import PostmortemChat
    from bot.statuspage.runtime import StatusPage

# An extra route of the bot's HTTP server: (method, path, aiohttp handler).
HttpRoute = tuple[str, str, "Callable[[web.Request], Awaitable[web.StreamResponse]]"]
# A /health check: one IETF health+json check object ({"status": "pass"|"warn"|"fail", ...}).
HealthProbe = Callable[[], Awaitable[dict[str, Any]]]


def warning_check(now: datetime, problems: list[str]) -> dict[str, Any]:
    """A /health check of work the bot can page without (archiving, follow-ups, Statuspage, timers'
    lateness): it warns, with what is wrong, and never fails, so a load balancer keeps the bot in."""
    check: dict[str, Any] = {"status": "pass", "time": now.isoformat()}
    if problems:
        check.update(status="warn", output="; ".join(problems)[:300])
    return check


@dataclass
class Deps:
    settings: Settings
    db: Database
    clock: Clock
    http: httpx.AsyncClient
    bus: Bus = field(default_factory=Bus)
    background: Background = field(default_factory=Background)
    priority: PagesFirst = field(default_factory=PagesFirst)
    # One registry per app, never the global one: two apps in one process (tests, the demo) count apart.
    metrics: Metrics = field(default_factory=Metrics)

    # --- the chat side, built before the domains (bot.slack.adapters) -----------------------------
    slack_client: AsyncWebClient | None = None
    # /health's `slack:auth` check (a cached auth.test); None without a Slack client.
    slack_auth: HealthProbe | None = None
    chat: IncidentChat | None = None
    # Who may see which incident (`can_see`); built with the chat adapters, which read membership.
    access: Access | None = None
    alert_chat: AlertChat | None = None
    playbook_chat: PlaybookChat | None = None
    postmortem_chat: PostmortemChat | None = None
    archive_chat: ArchiveChat | None = None
    # People and user groups, for the ops permission check (`permissions.restart: ["@oncall"]`).
    ops_directory: Directory | None = None

    # --- the domain services (bot.wiring.domains) -------------------------------------------------
    escalator: Escalator | None = None
    scheduler: EscalationScheduler | None = None
    alerts: AlertProcessor | None = None
    playbooks: PlaybookRegistry | None = None
    # The deploy platforms and timings of /restart, /rollback and /status.
    ops: OpsRuntime | None = None
    # The team's tracker for follow-ups (`issue_tracker:` in bot.yml); None when not configured.
    issue_tracker: IssueTracker | None = None
    # Its closed-issue check (a timer row claimed once across replicas); None without a tracker.
    followup_checker: ClosedIssueChecker | None = None
    # `channels.archive_after`: the archive timers (None when not configured).
    archiver: Archiver | None = None
    # The public status page (`status_page:` in bot.yml); None when it is not configured.
    status_page: StatusPage | None = None
    # The sweeps that finish what a crash interrupted (tests wait on their first run).
    setup_sweep: Sweep | None = None
    ops_sweep: Sweep | None = None

    # --- what the server and the listeners collect from the domains -------------------------------
    http_routes: list[HttpRoute] = field(default_factory=list)
    health_probes: dict[str, HealthProbe] = field(default_factory=dict)

    # --- per-process state of the flows ----------------------------------------------------------
    # Setup leases this process took and did not release (a crash mid-setup): reclaimed by a retry.
    unreleased_setup_leases: dict[int, datetime] = field(default_factory=dict)
    # One lock per playbook run (kept here: tests run many bots, each on its own loop).
    playbook_locks: KeyedLocks[int] = field(default_factory=KeyedLocks)
    # One lock per incident: its topic, summary and announcement are refreshed one refresh at a time.
    standing_locks: KeyedLocks[int] = field(default_factory=KeyedLocks)

    # Run by the server after migration (e.g. start the scheduler, reschedule pending pages) and at shutdown.
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    @property
    def incident_access(self) -> Access:
        """The access check; without a chat adapter (CLI) private incidents are seen only by the privileged."""
        if self.access is None:
            from bot.incidents.access import Access

            self.access = Access(membership=None, permissions=self.settings.config.permissions, clock=self.clock)
        return self.access

    @property
    def incident_chat(self) -> IncidentChat:
        if self.chat is None:
            raise RuntimeError("chat adapter not set up")
        return self.chat
