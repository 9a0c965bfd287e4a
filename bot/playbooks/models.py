"""Tables of the playbooks domain: a run of a playbook on an incident, and the state of each step.

A run keeps a snapshot of the playbook as it was when it started, so editing a YAML file (and
restarting the bot) in the middle of an incident never changes the steps people are working.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


class StepStatus(StrEnum):
    PENDING = "pending"
    DONE = "done"
    SKIPPED = "skipped"

    @property
    def emoji(self) -> str:
        return {"pending": "⬜", "done": "✅", "skipped": "⏭"}[self.value]


class PlaybookRun(SQLModel, table=True):
    __tablename__ = "playbook_runs"
    __table_args__ = (
        # `current` is True for the incident's live run and NULL otherwise: NULLs never collide in a
        # unique index (SQLite and PostgreSQL alike), so this allows one current run per incident.
        Index("ux_playbook_runs_current", "incident_id", "current", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    playbook_id: str = Field(max_length=100)
    playbook_title: str = Field(max_length=150)
    snapshot: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    current: bool | None = Field(default=True)
    started_by: str | None = Field(default=None, max_length=100)
    started_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    # Why this playbook: "playbook:database was asked for", "keywords 'slow', 'p95'", "picked by U0BOB".
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The one progress message in the incident channel, edited in place.
    progress_channel: str | None = Field(default=None, max_length=50)
    progress_ts: str | None = Field(default=None, max_length=50)
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    # completed | switched
    finished_reason: str | None = Field(default=None, max_length=20)
    finished_by: str | None = Field(default=None, max_length=100)


class StepState(SQLModel, table=True):
    __tablename__ = "playbook_step_states"
    __table_args__ = (UniqueConstraint("run_id", "step_id", name="ux_playbook_step_states_run_step"),)

    id: int | None = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_runs.id", index=True)
    step_id: str = Field(max_length=100)
    position: int
    state: StepStatus = Field(default=StepStatus.PENDING, max_length=10)
    by: str | None = Field(default=None, max_length=100)
    at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    reason: str = Field(default="", sa_column=Column(Text, nullable=False, default=""))
    # The last time the step's action ran: who, when, whether it worked, what it said.
    action: str | None = Field(default=None, max_length=20)
    action_by: str | None = Field(default=None, max_length=100)
    action_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    action_ok: bool | None = None
    action_output: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
