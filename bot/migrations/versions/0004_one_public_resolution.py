"""Status page: at most one public "resolved" update per incident (the resolve and its catch-up race).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-06 06:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("status_page_updates", schema=None) as batch_op:
        batch_op.create_index(
            "ux_status_page_updates_resolved",
            ["incident_id"],
            unique=True,
            sqlite_where=sa.text("status = 'resolved'"),
            postgresql_where=sa.text("status = 'resolved'"),
        )


def downgrade() -> None:
    with op.batch_alter_table("status_page_updates", schema=None) as batch_op:
        batch_op.drop_index(
            "ux_status_page_updates_resolved",
            sqlite_where=sa.text("status = 'resolved'"),
            postgresql_where=sa.text("status = 'resolved'"),
        )
