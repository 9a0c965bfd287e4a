"""Incidents: when the channel's follow-up work was done, so a crash before it is caught up.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 11:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("channel_ready_at", bot.db.UTCDateTime(timezone=True), nullable=True))
    # Incidents set up before the upgrade are taken as caught up.
    op.execute("UPDATE incidents SET channel_ready_at = declared_at WHERE channel_id IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("channel_ready_at")
