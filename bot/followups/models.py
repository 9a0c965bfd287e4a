"""The closed-issue check's timer: one row per recurring sweep, with its due time and a claim lease.

APScheduler only wakes the process; the row decides. Whoever's conditional UPDATE takes the due row
asks the tracker, so with two replicas the sweep runs once per `issue_tracker.check_every`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Index
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


def _when(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_type=UTCDateTime(), nullable=nullable)


class FollowupCheck(SQLModel, table=True):
    __tablename__ = "followup_checks"
    __table_args__ = (Index("ux_followup_checks_name", "name", unique=True),)

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=40)  # which sweep ("closed-issues")
    due_at: datetime = _when(nullable=False)
    claim_token: str | None = Field(default=None, max_length=64)
    claim_expires_at: datetime | None = _when()
    last_run_at: datetime | None = _when()
    runs: int = 0
    error: str | None = Field(default=None, max_length=2000)
