"""The post-mortem sections people write (impact, root cause, ...), kept in the database so every
rendering (the Slack upload, the CLI, the dashboard) shows the same text."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Column, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


class PostmortemSection(SQLModel, table=True):
    __tablename__ = "postmortem_sections"
    __table_args__ = (UniqueConstraint("incident_id", "section", name="ux_postmortem_section"),)

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    section: str = Field(max_length=40)
    text: str = ""
    updated_by: str = Field(max_length=100)
    updated_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
