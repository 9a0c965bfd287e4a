"""Escalation tables: pages and reminders are rows with a due time.

A row is *pending* while `sent_at` and `cancelled_at` are both NULL. Whoever sends it first claims
it with a conditional UPDATE that sets `claim_token`/`claim_expires_at` (a lease), and only the
holder of a live claim may mark it sent. A process that dies holding a claim loses it when the
lease runs out, and another process (or the restarted one) sends the page. So a page is never
lost. A page DM whose outcome is unknown (its sender died or stalled before recording it, or
Slack's answer never came back) is looked for in the DM before it is sent again; a DM can still
go out twice in the few cases `leases.py` lists: we prefer a rare duplicate to a silent outage.

`escalation_page_targets` keeps a page's delivery per recipient, so a retry after a transient
Slack failure DMs only those not reached yet.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime

_PENDING = text("sent_at IS NULL AND cancelled_at IS NULL")


def _when(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime(), nullable=nullable)


class TimerRow(SQLModel):
    """Columns every timer shares: due time, the claim lease, the outcome."""

    due_at: datetime = _when(nullable=False)
    created_at: datetime = _when(nullable=False)
    claim_token: str | None = Field(default=None, max_length=64)
    claimed_at: datetime | None = _when()
    claim_expires_at: datetime | None = _when()
    attempts: int = 0
    sent_at: datetime | None = _when()
    # How long after due_at it went out; `late` is set when that exceeds the scheduler's tolerance.
    late: bool = False
    late_seconds: float | None = None
    cancelled_at: datetime | None = _when()
    cancel_reason: str | None = Field(default=None, max_length=200)
    error: str | None = Field(default=None, max_length=2000)

    @property
    def is_pending(self) -> bool:
        return self.sent_at is None and self.cancelled_at is None


class Page(TimerRow, table=True):
    """One escalation level (or one repeat of the last level) for one incident."""

    __tablename__ = "escalation_pages"
    __table_args__ = (
        # One row per (incident, level, repeat): planning twice, or on two replicas, inserts once.
        Index("ux_pages_incident_level_repeat", "incident_id", "level", "repeat", unique=True),
        Index("ix_pages_pending_due", "due_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    level: int  # 1-based, as shown to people
    repeat: int = 0  # 0 for the level itself, n for the n-th repeat of the last level
    name: str = Field(max_length=200)
    # Targets as written in bot.yml when planned (`oncall`, U…, S…, @handle) ...
    notify: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    # ... and the users they resolved to when sent.
    sent_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    failed: dict[str, str] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    acknowledged_at: datetime | None = _when()
    acknowledged_by: str | None = Field(default=None, max_length=100)


class TargetKind(StrEnum):
    USER = "user"  # a person the page is DMed to
    TARGET = "target"  # a bot.yml target (S…, @handle, oncall) that resolved to nobody, or not yet
    CHANNEL = "channel"  # the mention in the incident channel (recipient: the channel ID)
    PAGERDUTY = "pagerduty"  # the PagerDuty trigger (recipient: "pagerduty")


class TargetState(StrEnum):
    PENDING = "pending"  # to do on this attempt or the next (a transient failure leaves it here)
    SENT = "sent"  # DM delivered (user) / resolved to users (target)
    FAILED = "failed"  # for good: a permanent error, or given up after the page's last attempt


class PageTarget(SQLModel, table=True):
    """Delivery state of one page to one recipient, so a retry DMs only those not reached yet.

    Rows are written by the holder of the page's claim. Each DM is also fenced on its own row
    (`claim_token`/`claim_expires_at`, with the page's token) so a sender whose page lease ran out
    and the replica that took over never DM the same person twice.
    """

    __tablename__ = "escalation_page_targets"
    __table_args__ = (Index("ux_page_targets_page_kind_recipient", "page_id", "kind", "recipient", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    page_id: int = Field(foreign_key="escalation_pages.id")
    kind: str = Field(max_length=20)  # TargetKind
    recipient: str = Field(max_length=200)  # a user ID, or the target as written in bot.yml
    state: str = Field(default=TargetState.PENDING, max_length=20)  # TargetState
    attempts: int = 0
    error: str | None = Field(default=None, max_length=500)
    claim_token: str | None = Field(default=None, max_length=64)
    claim_expires_at: datetime | None = _when()
    invited: bool = False  # Slack added them to the incident channel (or they were in it already)
    created_at: datetime = _when(nullable=False)
    done_at: datetime | None = _when()


class ReminderKind(StrEnum):
    STATUS_UPDATE = "status_update"
    POSTMORTEM = "postmortem"


class Reminder(TimerRow, table=True):
    """A nudge: post a status update (open P1/P2), or finish the post-mortem (after resolve)."""

    __tablename__ = "escalation_reminders"
    __table_args__ = (
        Index("ux_reminders_incident_kind_seq", "incident_id", "kind", "seq", unique=True),
        Index("ix_reminders_pending_due", "due_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    kind: str = Field(max_length=40)
    seq: int = 0  # the n-th reminder of this kind for this incident
    sent_to: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
