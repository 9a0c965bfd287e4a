"""Dashboard sessions signed out before their cookie expired, so a copy of the cookie is refused.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "dashboard_sessions_ended",
        sa.Column("session_id", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
        sa.Column("expires_at", bot.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("session_id"),
    )
    with op.batch_alter_table("dashboard_sessions_ended", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_sessions_ended_expires_at"), ["expires_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_sessions_ended", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_sessions_ended_expires_at"))
    op.drop_table("dashboard_sessions_ended")
