"""Where incidents are told and written up: channels, post-mortems, the issue tracker, the status page."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from bot.config.base import ChannelRef, Duration, Interval, Strict, WebUrl


class Channels(Strict):
    announcements: ChannelRef | None = None
    alerts: ChannelRef | None = None
    private_incidents: bool = False
    # Archive a resolved incident's channel this long after resolution (never while it is open).
    archive_after: Duration | None = None

    @field_validator("archive_after")
    @classmethod
    def _archive_positive(cls, value: timedelta | None) -> timedelta | None:
        if value is not None and value <= timedelta(0):
            raise ValueError("archive_after must be longer than 0 (e.g. 7d); leave it out to keep channels")
        return value


class IssueTracker(Strict):
    """Where follow-ups become issues."""

    kind: Literal["github", "jira", "linear"]
    token_env: str  # env var holding the token (GitHub, Linear) or the Jira API token
    repo: str | None = None  # github: owner/name
    project: str | None = None  # jira: project key
    email_env: str | None = None  # jira: env var with the account's email (basic auth)
    issue_type: str = "Task"  # jira
    team_id: str | None = None  # linear
    labels: list[str] = ["incident-follow-up"]  # github
    # github/linear default to the public API; jira: https://<site>.atlassian.net (a full URL: without its
    # scheme every call fails as "unreachable" at run time, so it is refused when bot.yml loads)
    api_url: WebUrl | None = None
    check_every: Interval = timedelta(minutes=15)  # how often open issues are checked for closure

    @model_validator(mode="after")
    def _settings_for_kind(self) -> IssueTracker:
        needed = {"github": ["repo"], "jira": ["project", "email_env", "api_url"], "linear": ["team_id"]}[self.kind]
        missing = [name for name in needed if not getattr(self, name)]
        if missing:
            raise ValueError(f"kind {self.kind} needs {', '.join(missing)}")
        if self.kind == "github" and not re.fullmatch(r"[\w.-]+/[\w.-]+", self.repo or ""):
            raise ValueError(f"repo {self.repo!r}: write owner/name")
        return self


class Postmortem(Strict):
    templates_dir: Path | None = None


class StatuspageTarget(Strict):
    """Atlassian Statuspage: the page, the env var holding its API key, and service → component id."""

    page_id: str = Field(min_length=1)
    api_key_env: str = "STATUSPAGE_API_KEY"
    components: dict[str, str] = {}


class StatusPageConfig(Strict):
    """The public status page: its title, public components (name → the services behind them)."""

    title: str = Field(default="Service status", min_length=1, max_length=120)
    components: dict[str, list[str]] = {}
    # How often the page probes the services' health endpoints (stored for the 90-day bars).
    probe_every: Interval = timedelta(minutes=1)
    # P1/P2 incidents with no public update for this long are reminded; default reminders.status_update_every.
    remind_every: Interval | None = None
    statuspage: StatuspageTarget | None = None
    # Old public name -> current one: the component keeps its 90 days of history and its public id.
    renamed: dict[str, str] = {}

    @field_validator("components")
    @classmethod
    def _components(cls, components: dict[str, list[str]]) -> dict[str, list[str]]:
        for name, services in components.items():
            if not name.strip() or len(name) > 100:
                raise ValueError(f"component name {name!r}: 1 to 100 characters")
            if not services:
                raise ValueError(f"component {name!r} names no service")
        return components

    @model_validator(mode="after")
    def _renamed(self) -> StatusPageConfig:
        for old, new in self.renamed.items():
            if old in self.components:
                raise ValueError(f"status_page.renamed: {old!r} is still a component; remove it from one of the two")
            if new not in self.components:
                known = ", ".join(self.components) or "none"
                raise ValueError(
                    f"status_page.renamed.{old}: {new!r} is not a component (components: {known}); name the"
                    " component as it is called now"
                )
        return self

    def id_name(self, component: str) -> str:
        """The name a component's public id is made from: its first name, so a rename keeps the id."""
        return next((old for old, new in self.renamed.items() if new == component), component)
