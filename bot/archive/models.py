"""One archive timer per incident: due `channels.archive_after` after the (latest) resolution.

The row shares the escalation timers' columns (`TimerRow`): due time, claim lease, outcome. It is
claimed only while its incident is still resolved, so a reopened incident's channel is never
archived; resolving it again moves the same row to the new due time.
"""

from __future__ import annotations

from sqlalchemy import Index, text
from sqlmodel import Field

from bot.escalation.models import TimerRow

_PENDING = text("sent_at IS NULL AND cancelled_at IS NULL")


class ChannelArchive(TimerRow, table=True):
    __tablename__ = "channel_archives"
    __table_args__ = (
        Index("ux_channel_archives_incident", "incident_id", unique=True),
        Index("ix_channel_archives_pending_due", "due_at", sqlite_where=_PENDING, postgresql_where=_PENDING),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    channel_id: str = Field(max_length=40)
    # The last message is out: a retry after a failed archive call does not post it twice.
    goodbye_posted: bool = False
