"""What the status page is built from: public updates, daily component health, and two kinds of timer row.

Public updates are a table of their own, never derived from the timeline: only what someone
published on purpose is public. Health is kept as one row per component and UTC day (counters of
probes by outcome), so the 90-day bars are 90 rows per component however often the page probes.
"""

from __future__ import annotations

from datetime import date, datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, text
from sqlmodel import Field, SQLModel

from bot.config import Severity
from bot.db import UTCDateTime
from bot.escalation.models import TimerRow


class Impact(StrEnum):
    """Statuspage's incident impact, in order of badness."""

    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return list(Impact).index(self)

    @property
    def component_status(self) -> ComponentStatus:
        return {
            "none": ComponentStatus.OPERATIONAL,
            "minor": ComponentStatus.DEGRADED,
            "major": ComponentStatus.PARTIAL,
            "critical": ComponentStatus.MAJOR,
        }[self.value]

    @classmethod
    def for_severity(cls, severity: str) -> Impact:
        """The impact a first publish gets when nobody says: P1 critical, P2 major, else minor."""
        return {Severity.P1: cls.CRITICAL, Severity.P2: cls.MAJOR}.get(Severity(severity), cls.MINOR)


class ComponentStatus(StrEnum):
    """Statuspage's component statuses (`under_maintenance` is never set by the bot)."""

    OPERATIONAL = "operational"
    DEGRADED = "degraded_performance"
    PARTIAL = "partial_outage"
    MAJOR = "major_outage"

    @property
    def rank(self) -> int:
        return list(ComponentStatus).index(self)

    @property
    def label(self) -> str:
        return {
            "operational": "Operational",
            "degraded_performance": "Degraded performance",
            "partial_outage": "Partial outage",
            "major_outage": "Major outage",
        }[self.value]


def _when(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime(), nullable=nullable)


PUBLIC_STATUSES = ("investigating", "identified", "monitoring", "resolved")


_RESOLVED = text("status = 'resolved'")


class PublicUpdate(SQLModel, table=True):
    """One update published on purpose: what the public sees, who published it and when.

    An incident has at most one "resolved" update: the resolve's own and the sweep's catch-up after a
    crash (on any replica) may both try, and this index lets exactly one of them through.
    """

    __tablename__ = "status_page_updates"
    __table_args__ = (
        Index("ix_status_page_updates_incident", "incident_id", "id"),
        Index(
            "ux_status_page_updates_resolved",
            "incident_id",
            unique=True,
            sqlite_where=_RESOLVED,
            postgresql_where=_RESOLVED,
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    title: str = Field(max_length=200)  # the public incident's name as of this update
    status: str = Field(max_length=20)  # investigating | identified | monitoring | resolved
    impact: str = Field(max_length=20)  # Impact
    components: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    message: str = Field(max_length=3000)
    published_by: str = Field(max_length=100)
    published_at: datetime = _when(nullable=False)
    edited_at: datetime | None = _when()  # its message corrected since (it keeps `published_at`)
    edited_by: str | None = Field(default=None, max_length=100)
    withdrawn_at: datetime | None = _when()  # the public incident was withdrawn: on no public output
    withdrawn_by: str | None = Field(default=None, max_length=100)
    # Statuspage's id of the incident update this one became there (from its answer): what an edit corrects.
    statuspage_update_id: str | None = Field(default=None, max_length=100)

    def status_of(self, component: str) -> ComponentStatus:
        """What this update tells the public of `component`: operational unless it names it and is open."""
        if self.status == "resolved" or component not in self.components:
            return ComponentStatus.OPERATIONAL
        return Impact(self.impact).component_status


class ComponentDay(SQLModel, table=True):
    """Probe counts of one public component on one UTC day, and the latest probe's outcome."""

    __tablename__ = "status_page_component_days"
    __table_args__ = (Index("ux_status_page_component_day", "component", "day", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    component: str = Field(max_length=100)
    day: date
    probes: int = 0
    degraded: int = 0
    down: int = 0
    last_status: str = Field(default=ComponentStatus.OPERATIONAL, max_length=30)
    last_at: datetime = _when(nullable=False)
    # When the probed status last changed (or came back after going stale): `last_at` moves on every probe,
    # this only when the page would show something else, so every replica derives the same page stamp from it.
    changed_at: datetime | None = _when()


class PageLayout(SQLModel, table=True):
    """A shape the page was served in (title, components and their ids, address) and when one replica
    first built it: the date of a page that has nothing newer to date it (see `bot/statuspage/layout.py`)."""

    __tablename__ = "status_page_layouts"

    digest: str = Field(primary_key=True, max_length=64)
    first_built_at: datetime = _when(nullable=False)


_PENDING = text("sent_at IS NULL AND cancelled_at IS NULL")


class PublicReminder(TimerRow, table=True):
    """A nudge to publish: an open P1/P2 incident has had no public update for the reminder interval."""

    __tablename__ = "status_page_reminders"
    __table_args__ = (
        Index("ux_status_page_reminders_seq", "incident_id", "seq", unique=True),
        Index("ix_status_page_reminders_due", "due_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    seq: int = 0


# An outbox row's cancel reason when its incident was deleted on Statuspage by hand (`statuspage/gone.py`).
DELETED_THERE = "deleted there: "


class SyncAction(StrEnum):
    """What an outbox row does at Statuspage: send the update, correct its body, or withdraw the incident."""

    UPDATE = "update"
    EDIT = "edit"
    WITHDRAW = "withdraw"


class StatuspageSync(TimerRow, table=True):
    """The outbox: one change still to send to Atlassian Statuspage (sent in order per incident).

    A row is written in the publish's (edit's, withdrawal's) own transaction, so a change is never lost
    to a crash or an outage at Statuspage; failures are retried with a growing back-off until accepted (a row
    Statuspage keeps refusing is given up after a few tries: `refusals`).
    """

    __tablename__ = "statuspage_outbox"
    __table_args__ = (
        Index("ix_statuspage_outbox_update", "update_id"),
        Index("ix_statuspage_outbox_due", "due_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    update_id: int = Field(foreign_key="status_page_updates.id")
    action: str = Field(default=SyncAction.UPDATE, max_length=20, sa_column_kwargs={"server_default": "update"})
    told_failure: bool = False  # the channel heard that this update is not on Statuspage yet


class StatuspageIncident(SQLModel, table=True):
    """Our incident ↔ the incident on Atlassian Statuspage, once the first update created it."""

    __tablename__ = "statuspage_incidents"

    incident_id: int = Field(foreign_key="incidents.id", primary_key=True)
    external_id: str = Field(max_length=100)
    created_at: datetime = _when(nullable=False)
