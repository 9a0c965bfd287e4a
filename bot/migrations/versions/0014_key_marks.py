"""Timeline: who marks a message key (a person's 📌, the pin), one row each, so that one person's removal
does not unmark a message someone else still marks. Messages marked before have no rows: a removal
falls back on what Slack says remains, as before.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:10:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "key_marks",
        sa.Column("channel_id", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("message_ts", sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
        sa.Column("marker", sqlmodel.sql.sqltypes.AutoString(length=140), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "message_ts", "marker"),
    )


def downgrade() -> None:
    op.drop_table("key_marks")
