"""Incidents: the notice that a person archived an open incident's channel is a timer row, so a crash after
Slack's event was acked, or Slack failing for a while, delays it instead of losing it.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-07 23:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_PENDING = "sent_at IS NULL AND cancelled_at IS NULL"


def upgrade() -> None:
    op.create_table(
        "incident_archived_notices",
        sa.Column("due_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("created_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("claim_token", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
        sa.Column("claimed_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("claim_expires_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("sent_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("late", sa.Boolean(), nullable=False),
        sa.Column("late_seconds", sa.Float(), nullable=True),
        sa.Column("cancelled_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
        sa.Column("error", sqlmodel.sql.sqltypes.AutoString(length=2000), nullable=True),
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("incident_id", sa.Integer(), nullable=False),
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("archived_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
        sa.Column("archived_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("incident_archived_notices", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_archived_notices_pending_due",
            ["due_at"],
            unique=False,
            sqlite_where=sa.text(_PENDING),
            postgresql_where=sa.text(_PENDING),
        )


def downgrade() -> None:
    with op.batch_alter_table("incident_archived_notices", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_archived_notices_pending_due")
    op.drop_table("incident_archived_notices")
