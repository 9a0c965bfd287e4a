"""Follow-ups: the issue state the check last acted on, and when it first saw the issue in the trash.

`issue_state` (open/closed) lets the check act only on a change of the issue, so a person who reopens a
follow-up whose issue stays closed keeps it open. Rows the bot marked done because their issue closed
(`issue_closed_at`) start as "closed"; the others start unknown (the first check records what it sees,
acting on it as before). `issue_trashed_at` starts the grace before a trashed Linear issue's link goes.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-06 16:47:11
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issue_state", sqlmodel.sql.sqltypes.AutoString(length=16), nullable=True))
        batch_op.add_column(sa.Column("issue_trashed_at", bot.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE action_items SET issue_state = 'closed' WHERE issue_closed_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_column("issue_trashed_at")
        batch_op.drop_column("issue_state")
