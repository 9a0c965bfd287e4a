"""Status page: a public update can be corrected (`edited_at`, `edited_by`) and a public incident withdrawn
(`withdrawn_at`, `withdrawn_by` on each of its updates); the Statuspage outbox says what a row does
(`action`: update, edit or withdraw), so one update may have several rows (a publish, then its edits).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06 17:30:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

import bot.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("status_page_updates", schema=None) as batch_op:
        batch_op.add_column(sa.Column("edited_at", bot.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("edited_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_at", bot.db.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(sa.Column("withdrawn_by", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
    with op.batch_alter_table("statuspage_outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "action",
                sqlmodel.sql.sqltypes.AutoString(length=20),
                nullable=False,
                server_default="update",
            )
        )
        batch_op.drop_index("ux_statuspage_outbox_update")
        batch_op.create_index("ix_statuspage_outbox_update", ["update_id"], unique=False)


def downgrade() -> None:
    op.execute("DELETE FROM statuspage_outbox WHERE action != 'update'")
    with op.batch_alter_table("statuspage_outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_statuspage_outbox_update")
        batch_op.create_index("ux_statuspage_outbox_update", ["update_id"], unique=True)
        batch_op.drop_column("action")
    with op.batch_alter_table("status_page_updates", schema=None) as batch_op:
        batch_op.drop_column("withdrawn_by")
        batch_op.drop_column("withdrawn_at")
        batch_op.drop_column("edited_by")
        batch_op.drop_column("edited_at")
