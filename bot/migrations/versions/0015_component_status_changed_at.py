"""Status page: a component day keeps when its probed status last changed (`changed_at`), apart from
`last_at` (every probe), so the page's change stamp is a fact of the database, the same on every replica
and across restarts. Rows from before take their last probe's time.

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 03:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("status_page_component_days", schema=None) as batch_op:
        batch_op.add_column(sa.Column("changed_at", bot.db.UTCDateTime(timezone=True), nullable=True))
    op.execute("UPDATE status_page_component_days SET changed_at = last_at")


def downgrade() -> None:
    with op.batch_alter_table("status_page_component_days", schema=None) as batch_op:
        batch_op.drop_column("changed_at")
