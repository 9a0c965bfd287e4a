"""What a post-mortem template sees: plain, precomputed values, no database objects.

Templates (including the ones users put in `postmortem.templates_dir`) get one `PostmortemData`
as `pm`. Everything a template needs is computed here in Python, so a template stays a layout
and a user's override cannot get a metric wrong. Text users typed stays raw in these objects;
the template escapes it (`md` filter for Markdown, autoescaping for HTML).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from bot.clock import elapsed

# The sections people write, key -> heading, in document order. Templates read `pm.written.<key>`.
SECTIONS: dict[str, str] = {
    "impact": "Impact",
    "root_cause": "Root cause",
    "trigger": "Trigger",
    "went_well": "What went well",
    "went_wrong": "What went wrong",
    "lucky": "Where we got lucky",
}


def no_sections() -> dict[str, str]:
    return dict.fromkeys(SECTIONS, "")


@dataclass(frozen=True)
class Metric:
    """One key time, e.g. first acknowledgement, and how long after the declaration it came."""

    name: str
    at: datetime | None
    after: timedelta | None  # since the declaration (bot.clock.elapsed); None when it has not happened
    missing: str  # what to say instead of a time, e.g. "not acknowledged"
    by: str | None = None
    note: str = ""  # a caveat, e.g. mitigated at resolve without a `monitoring` update


@dataclass(slots=True)
class Event:
    """A timeline event as the document shows it; `summary` is a one-line description.
    Not frozen: a frozen dataclass costs ~10 µs to build, and a long timeline builds 10,000 of them."""

    id: int
    at: datetime
    offset: timedelta  # since the declaration, between the times cut to the second (negative before it)
    kind: str
    actor: str | None
    text: str
    summary: str
    key: bool
    permalink: str | None
    data: dict[str, Any]


@dataclass(frozen=True)
class Responder:
    user: str
    roles: list[str]
    first_seen: datetime | None
    events: int  # timeline events this person is the actor of


@dataclass(frozen=True)
class Escalation:
    """A page (who was paged, level, late or not) or an acknowledgement."""

    at: datetime
    offset: timedelta
    kind: str  # "page" | "ack"
    level: str  # "1 (On-call engineer)", "" when unknown
    who: list[str]  # paged targets, or the person who acknowledged
    late: str  # "" or e.g. "sent 4m 10s late"
    text: str


@dataclass(frozen=True)
class Action:
    """A restart, rollback or redeploy from the timeline (`deploy` events)."""

    at: datetime
    offset: timedelta
    action: str
    service: str
    outcome: str
    actor: str | None
    detail: str


@dataclass(frozen=True)
class PlaybookStep:
    at: datetime
    offset: timedelta
    playbook: str
    step: str
    status: str  # started, done, skipped, action result ...
    actor: str | None
    detail: str


@dataclass(frozen=True)
class ActionItemRow:
    id: int
    text: str
    owner: str | None
    done: bool
    created_by: str
    created_at: datetime
    issue_url: str | None = None  # the follow-up's issue in the team's tracker
    issue_key: str | None = None
    issue_gone: str | None = None  # an issue that went from the tracker (deleted or moved out of reach)


@dataclass(frozen=True)
class Note:
    at: datetime
    actor: str | None
    text: str


@dataclass
class PostmortemData:
    ref: str
    number: int
    title: str
    status: str
    severity: str
    severity_label: str
    severity_at_declaration: str
    services: list[str]
    description: str
    playbook: str | None
    channel_id: str | None
    channel_name: str | None
    channel_url: str | None
    generated_at: datetime

    declared_at: datetime
    declared_by: str
    # When users were first hurt: the earliest alert's start, a `/incident started` correction, or the
    # declaration; `impact_from` says which ("first alert", "set by" `impact_set_by`, "declared").
    impact_start: datetime
    impact_from: str
    impact_set_by: str | None
    resolved_by: str | None
    resolution: str
    end: datetime | None
    duration: timedelta | None  # from the impact start
    ongoing_for: timedelta | None  # for an incident that is still open

    first_event: Event | None
    first_alert: Event | None
    detected: Metric  # impact start → declared: `after` is the time to detect
    declared: Metric
    acknowledged: Metric
    mitigated: Metric
    resolved: Metric

    commander: str | None
    comms: str | None
    scribe: str | None
    responders: list[Responder]
    escalations: list[Escalation]
    pages: int
    key_events: list[Event]
    events: list[Event]  # the full timeline, oldest first
    actions: list[Action]
    playbook_steps: list[PlaybookStep]
    notes: list[Note]
    action_items: list[ActionItemRow]
    # Slack user ID -> display name, filled by whoever can resolve names (the Slack layer).
    user_names: dict[str, str] = field(default_factory=dict)
    # The sections people write (SECTIONS), "" where nobody has yet: templates show a prompt instead.
    written: dict[str, str] = field(default_factory=no_sections)
    # When the first alert that led to the incident started firing (its `startsAt`; the impact start when
    # the impact start came from it), as opposed to `first_alert.at`, when it reached the timeline.
    first_alert_started: datetime | None = None
    # The most severe severity it had (P1 before P2), which a downgrade before the resolve hides from `severity`.
    severity_peak: str = ""
    # Levels that paged nobody anew, only told people paged at an earlier level that it escalated (not in `pages`).
    page_notes: int = 0
    # When the status first went back from `monitoring` (the first mitigation did not hold); None when it held.
    relapsed_at: datetime | None = None

    @property
    def is_resolved(self) -> bool:
        return self.status == "resolved"

    @property
    def was_worse(self) -> bool:
        """It was more severe at some point than both now and at its declaration (e.g. declared P3, raised
        to P1, lowered to P3 once mitigated): "declared as" does not say it then."""
        return bool(self.severity_peak) and self.severity_peak not in (self.severity, self.severity_at_declaration)

    @property
    def metrics(self) -> list[Metric]:
        return [self.declared, self.acknowledged, self.mitigated, self.resolved]

    @property
    def time_to_detect(self) -> timedelta:
        """Zero, not negative, when the impact started after the declaration (as `Incident.time_to_detect`)."""
        return max(elapsed(self.impact_start, self.declared_at), timedelta(0))

    @property
    def impact_after_declaration(self) -> timedelta:
        """How long after the declaration the impact started; zero when it started before (the usual case)."""
        return max(elapsed(self.declared_at, self.impact_start), timedelta(0))

    @property
    def first_alert_started_after(self) -> timedelta | None:
        """Since the declaration: negative when the alert started firing before it."""
        if self.first_alert_started is None:
            return None
        return elapsed(self.declared_at, self.first_alert_started)

    @property
    def open_for(self) -> timedelta:
        """Since the declaration (the summary's "declared at …; still open after …"), not since the impact."""
        return elapsed(self.declared_at, self.generated_at)
