"""Incidents: when the resolve's follow-up work was done, so a crash before it is caught up.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-06 14:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("resolve_handled_at", bot.db.UTCDateTime(timezone=True), nullable=True))
    # Incidents resolved before the upgrade are taken as caught up.
    op.execute("UPDATE incidents SET resolve_handled_at = resolved_at WHERE resolved_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("resolve_handled_at")
