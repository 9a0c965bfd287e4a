"""The objects every flow needs, built once at start-up and passed down.

Everything that talks to the outside world is here, so a test swaps it at the boundary:
the clock, the shared `httpx.AsyncClient` (health checks and deploy platforms), the database,
and the chat adapters. Domain packages attach their services in their `setup(deps)`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from bot.clock import Clock
from bot.db import Database
from bot.settings import Settings
from bot.signals import Bus
from bot.tasks import Background, PagesFirst

if TYPE_CHECKING:
    from bot.archive.flows import Archiver
    from bot.archive.ports import ArchiveChat
    from bot.followups.checker import ClosedIssueChecker
    from bot.followups.ports import IssueTracker
    from bot.incidents.access import Access
    from bot.incidents.ports import IncidentChat
    from bot.statuspage.runtime import StatusPage


@dataclass
class Deps:
    settings: Settings
    db: Database
    clock: Clock
    http: httpx.AsyncClient
    bus: Bus = field(default_factory=Bus)
    background: Background = field(default_factory=Background)
    priority: PagesFirst = field(default_factory=PagesFirst)
    chat: IncidentChat | None = None
    # Who may see which incident (`can_see`); built with the chat adapters, which read membership.
    access: Access | None = None
    # The team's tracker for follow-ups (`issue_tracker:` in bot.yml); None when not configured.
    issue_tracker: IssueTracker | None = None
    # Its closed-issue check (a timer row claimed once across replicas); None without a tracker.
    followup_checker: ClosedIssueChecker | None = None
    # `channels.archive_after`: the archive timers (None when not configured) and Slack's side of archiving.
    archiver: Archiver | None = None
    archive_chat: ArchiveChat | None = None
    # The public status page (`status_page:` in bot.yml); None when it is not configured.
    status_page: StatusPage | None = None
    # Filled by the domain packages' setup(deps); typed where they are defined.
    services: dict[str, Any] = field(default_factory=dict)
    # Run by the server after migration (e.g. start the scheduler, reschedule pending pages) and at shutdown.
    on_start: list[Callable[[], Awaitable[None]]] = field(default_factory=list)
    on_stop: list[Callable[[], Awaitable[None]]] = field(default_factory=list)

    def get(self, name: str) -> Any:
        try:
            return self.services[name]
        except KeyError:
            raise RuntimeError(f"service {name!r} is not set up") from None

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
