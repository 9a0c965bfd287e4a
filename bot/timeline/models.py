"""Timeline events: the record every post-mortem is written from."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


class Kind(StrEnum):
    """What happened; each kind's `data` is typed in bot.timeline.events."""

    DECLARED = "declared"
    STATUS = "status"
    SEVERITY = "severity"
    ROLE = "role"
    ACK = "ack"
    NOTE = "note"
    ACTION_ITEM = "action_item"
    RESOLVED = "resolved"
    MESSAGE = "message"
    CHAT_ERROR = "chat_error"
    SETUP = "setup"
    UNFINISHED_WORK = "unfinished_work"
    # Written by other domains; listed so the post-mortem knows them.
    PAGE = "page"
    REMINDER = "reminder"
    PLAYBOOK = "playbook"
    PLAYBOOK_STEP = "playbook_step"
    HEALTH = "health"
    DEPLOY = "deploy"
    ALERT = "alert"
    POSTMORTEM = "postmortem"
    IMPACT = "impact"
    FOLLOWUP_STATUS = "action_item_status"
    PUBLIC_UPDATE = "public_update"
    STATUSPAGE = "statuspage"


class TimelineEventBase(SQLModel):
    kind: str = Field(max_length=40)
    actor: str | None = Field(default=None, max_length=100)
    text: str = ""
    key: bool = False


class TimelineEvent(TimelineEventBase, table=True):
    __tablename__ = "timeline_events"
    __table_args__ = (
        Index("ix_timeline_incident_at", "incident_id", "at", "id"),
        # A Slack message is stored once, however often its event is delivered.
        Index("ux_timeline_message", "channel_id", "message_ts", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    channel_id: str | None = None
    message_ts: str | None = None
    permalink: str | None = None
    data: dict[str, Any] = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class KeyMark(SQLModel, table=True):
    """Who marks a message key, one row each: a person's 📌 (`pushpin:U123`) or the channel's pin (`pin`).

    A message is key while one remains; Slack's events say only what was added or removed, and one
    flag could not tell one person's removal from the last one (bot/slack/listeners/events/timeline.py).
    """

    __tablename__ = "key_marks"

    channel_id: str = Field(primary_key=True, max_length=40)
    message_ts: str = Field(primary_key=True, max_length=40)
    marker: str = Field(primary_key=True, max_length=140)


class ProcessedEvent(SQLModel, table=True):
    """Slack `event_id`s already handled: retries of the same delivery are dropped."""

    __tablename__ = "processed_events"

    event_id: str = Field(primary_key=True, max_length=100)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))


class ProcessedRequest(SQLModel, table=True):
    """Signatures of slash commands and interactions already handled: a replayed request is dropped."""

    __tablename__ = "processed_requests"

    signature: str = Field(primary_key=True, max_length=100)
    received_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
