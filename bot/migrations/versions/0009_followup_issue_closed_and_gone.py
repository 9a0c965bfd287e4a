"""Follow-ups: when the bot marked one done because its issue closed, and the name of an issue that went.

`issue_closed_at` tells a follow-up the tracker closed (re-checked for a while, opened again if its issue
is) from one a person marked done (never reopened by the tracker). Rows done before this revision have
none: they are left as they are. `issue_gone` names an issue deleted or moved out of the bot's reach.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 14:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.add_column(sa.Column("issue_closed_at", bot.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("issue_gone", sqlmodel.sql.sqltypes.AutoString(length=500), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("action_items", schema=None) as batch_op:
        batch_op.drop_column("issue_gone")
        batch_op.drop_column("issue_closed_at")
