"""Tables of the ops domain: the audit log of privileged actions (restart, rollback) and refusals.

A row is written when an action starts (`started`) and finished in place with its outcome, so
a bot that dies mid-deploy still leaves a trace of who started what. Refusals and cancellations
are written once, already finished.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import Column, Index
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


class Action(StrEnum):
    RESTART = "restart"
    ROLLBACK = "rollback"

    @property
    def verb(self) -> str:
        return {"restart": "Restart", "rollback": "Rollback"}[self.value]


class Outcome(StrEnum):
    STARTED = "started"  # the platform was called; replaced by the final outcome
    REFUSED = "refused"  # not allowed, or the plan went stale before confirmation
    CANCELLED = "cancelled"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    INTERRUPTED = "interrupted"  # the bot stopped (kill -9, a crash) while following it: outcome unknown


class AuditLog(SQLModel, table=True):
    __tablename__ = "audit_log"
    __table_args__ = (
        Index("ix_audit_log_at", "at"),
        Index("ix_audit_log_service_at", "service", "at"),
        Index("ix_audit_log_incident", "incident_id"),
        # One confirmation message is acted on once: a second click (or replica) loses the insert race.
        Index("ux_audit_log_request", "request_id", unique=True),
    )

    id: int | None = Field(default=None, primary_key=True)
    at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    finished_at: datetime | None = Field(default=None, sa_column=Column(UTCDateTime(), nullable=True))
    actor: str = Field(max_length=100)
    action: str = Field(max_length=20)
    service: str = Field(max_length=100)
    platform: str | None = Field(default=None, max_length=20)
    from_deployment: str | None = Field(default=None, max_length=200)
    # A rollback's target, what a restart with nothing live redeployed, else the deployment a restart made.
    target_deployment: str | None = Field(default=None, max_length=200)
    outcome: str = Field(max_length=20)
    detail: str = Field(default="", max_length=2000)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    channel_id: str | None = Field(default=None, max_length=40)
    request_id: str | None = Field(default=None, max_length=64)  # the confirmation's nonce


class PendingAction(SQLModel, table=True):
    """A restart/rollback shown for confirmation: the Confirm and Cancel buttons carry only its id.

    What is confirmed is read back from here, never from the click, so a click carrying another
    service, deployment or incident is not even expressible; an unknown id is refused and audited.
    """

    __tablename__ = "ops_pending_actions"

    id: str = Field(primary_key=True, max_length=64)  # random, unguessable; the audit row's request_id
    created_at: datetime = Field(sa_column=Column(UTCDateTime(), nullable=False))
    action: str = Field(max_length=20)
    service: str = Field(max_length=100)
    current_id: str | None = Field(default=None, max_length=200)
    # A rollback's target; a restart's is the deployment it redeploys (nothing live), checked at the click.
    target_id: str | None = Field(default=None, max_length=200)
    requested_by: str = Field(max_length=100)
    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    channel_id: str | None = Field(default=None, max_length=40)
