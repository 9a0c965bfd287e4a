"""Incidents and their action items.

`IncidentBase` holds what a user gives when declaring; `Incident` is the table with everything
the bot learns afterwards (channel, roles, times). The incident number is the primary key, so
`INC-<n>` is sequential and unique without a second counter that two replicas could race on.
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import Column, Index, text
from sqlmodel import Field, SQLModel

from bot.clock import elapsed
from bot.config import Severity
from bot.db import UTCDateTime
from bot.escalation.models import TimerRow


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"

    @property
    def emoji(self) -> str:
        return {
            "investigating": "🔍",
            "identified": "🎯",
            "monitoring": "👀",
            "resolved": "✅",
        }[self.value]


UPDATE_STATUSES = (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)


class Role(StrEnum):
    COMMANDER = "commander"
    COMMS = "comms"
    SCRIBE = "scribe"


def _utc(**kw: object) -> object:
    return Field(default=None, sa_column=Column(UTCDateTime(), **kw))  # type: ignore[arg-type]


class IncidentBase(SQLModel):
    title: str = Field(max_length=300)
    severity: Severity = Field(default=Severity.P2)
    service: str | None = Field(default=None, max_length=100)
    playbook_id: str | None = Field(default=None, max_length=100)
    description: str = Field(default="", max_length=3000)
    # Private: a private channel, and seen only by its members and `permissions.private_incidents`.
    private: bool = Field(default=False)


class IncidentCreate(IncidentBase):
    declared_by: str


class Incident(IncidentBase, table=True):
    __tablename__ = "incidents"
    __table_args__ = (
        Index("ix_incidents_status", "status"),
        Index("ix_incidents_channel_id", "channel_id", unique=True),
        Index("ix_incidents_declared_at", "declared_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    status: Status = Field(default=Status.INVESTIGATING)
    declared_by: str
    commander: str | None = None
    comms: str | None = None
    scribe: str | None = None
    channel_id: str | None = None
    channel_name: str | None = None
    summary_ts: str | None = None
    announcement_channel: str | None = None
    announcement_ts: str | None = None  # "": someone deleted it; no longer updated nor posted again
    declared_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    # When users were first hurt: the earliest start of the alerts of its linked groups when before the
    # declaration (moved only earlier, while open), or set with `/incident started` (then the alerts no
    # longer move it: bot/incidents/impact.py); NULL means the declaration (see `impact_start`).
    impact_started_at: datetime | None = _utc()  # type: ignore[assignment]
    acknowledged_at: datetime | None = _utc()  # type: ignore[assignment]
    acknowledged_by: str | None = None
    mitigated_at: datetime | None = _utc()  # type: ignore[assignment]
    resolved_at: datetime | None = _utc()  # type: ignore[assignment]
    resolved_by: str | None = None
    resolution: str = ""
    last_status_update_at: datetime | None = _utc()  # type: ignore[assignment]
    updated_at: datetime | None = _utc()  # type: ignore[assignment]
    # Set when a setup step (channel, summary, announcement) failed; cleared by a successful retry.
    setup_error: str | None = None
    # A lease: only one finish_setup at a time (two clicks on Retry, two replicas), see setup_rows.claim_setup.
    setup_claimed_at: datetime | None = _utc()  # type: ignore[assignment]
    # The severity the escalation (pages, reminders) was last planned for: the severity at declaration,
    # then each re-plan's. Differs from `severity` when a change's re-plan was lost (a crash between
    # the commit and its signal's handler); the escalation sweep re-plans it then.
    planned_severity: Severity | None = Field(default=None)
    # When IncidentChannelReady's work (the pages' catch-up, the playbook) was done. NULL with a channel
    # and no setup lease: a crash came in between, and the resume sweep does it again.
    channel_ready_at: datetime | None = _utc()  # type: ignore[assignment]
    # When IncidentResolved's work (pages cancelled, post-mortem chase planned, PagerDuty resolved, the
    # draft shared) was done. NULL on a resolved incident: a crash came in between, and the resume sweep
    # does it again.
    resolve_handled_at: datetime | None = _utc()  # type: ignore[assignment]
    # A private incident's secret: random, written once at its declaration, never shown. What names the
    # incident outside its channel (`alias`) is derived from it, so it gives away no number and does not
    # change when a token or a secret in the settings is rotated. NULL: public, or declared before 0017.
    secret: str | None = Field(default=None, max_length=64)

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"

    @property
    def impact_start(self) -> datetime:
        return self.impact_started_at or self.declared_at

    @property
    def time_to_detect(self) -> timedelta:
        """Impact start → declared (zero when nothing says impact began earlier)."""
        return max(elapsed(self.impact_start, self.declared_at), timedelta(0))

    @property
    def is_open(self) -> bool:
        return self.status != Status.RESOLVED

    @property
    def duration(self) -> timedelta | None:
        """Declared → resolved, between the times as shown (the post-mortem's time to resolve)."""
        if self.resolved_at is None:
            return None
        return elapsed(self.declared_at, self.resolved_at)

    def role(self, role: Role) -> str | None:
        return getattr(self, role.value)  # type: ignore[no-any-return]

    def alias(self, purpose: str) -> str | None:
        """How a private incident is named where outsiders read (`purpose`: "announcement", "pagerduty"):
        stable, unguessable, one per purpose so the places cannot be matched up. None without a secret."""
        if self.secret is None:
            return None
        return hmac.new(self.secret.encode(), purpose.encode(), hashlib.sha256).hexdigest()[:32]


# The table itself, for Core statements on the hot path (a declaration's writes): no ORM unit of work.
INCIDENTS = Incident.metadata.tables["incidents"]


class ActionItemBase(SQLModel):
    text: str = Field(max_length=2000)
    owner: str | None = None


class ActionItem(ActionItemBase, table=True):
    __tablename__ = "action_items"

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    created_by: str
    created_at: datetime = _utc(nullable=False)  # type: ignore[assignment]
    done: bool = False
    # The issue in the team's tracker (issue_tracker: in bot.yml), once created: its web link and the
    # tracker's own key (GitHub number, Jira key, Linear id) used to check whether it was closed.
    issue_url: str | None = Field(default=None, max_length=500)
    issue_key: str | None = Field(default=None, max_length=200)
    issue_checked_at: datetime | None = _utc()  # type: ignore[assignment]
    # A lease while an issue is being created, so two clicks (or replicas) never open two issues.
    issue_claimed_at: datetime | None = _utc()  # type: ignore[assignment]
    # Set before the tracker is asked to create the issue and sent along with it (a marker in the body,
    # Linear's issue id): a retry after a lost answer finds that issue instead of opening a second one.
    issue_token: str | None = Field(default=None, max_length=64)
    # When the bot marked it done because its issue was closed (None: open, or marked done by a person):
    # only those are asked again, for `followups.service.REOPEN_WINDOW`, and opened again if the issue is.
    issue_closed_at: datetime | None = _utc()  # type: ignore[assignment]
    # What people called an issue that went from the tracker (deleted, or moved where the bot cannot read
    # it): its link is dropped so *Create issue* can make another, and this says why it has none.
    issue_gone: str | None = Field(default=None, max_length=500)
    # The issue's state (open/closed) the check last acted on: it acts only when that changes, so a
    # follow-up a person reopened while its issue stayed closed stays open until the issue moves.
    issue_state: str | None = Field(default=None, max_length=16)
    # When the check first saw the issue in the tracker's trash (Linear): the link is dropped only if it
    # is still there `followups.service.TRASH_GRACE` later (a restored issue keeps its link).
    issue_trashed_at: datetime | None = _utc()  # type: ignore[assignment]


_PENDING = text("sent_at IS NULL AND cancelled_at IS NULL")


class ArchivedNotice(TimerRow, table=True):
    """Telling someone a person archived the open incident's channel (`archived_notice.py`): a timer row,
    due at once, planned with the archive's timeline line before Slack's event is acked. A crash after the
    ack, or Slack failing for a while, delays the notice; it is not lost. Claimed like a page
    (`escalation/leases.py`), so two replicas send it once."""

    __tablename__ = "incident_archived_notices"
    __table_args__ = (
        Index("ix_incident_archived_notices_pending_due", "due_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    channel_id: str = Field(max_length=40)
    archived_by: str | None = Field(default=None, max_length=100)
    # When Slack says the channel was archived: an unarchive at or after it means the notice is not sent.
    archived_at: datetime = Field(sa_type=UTCDateTime(), nullable=False)
