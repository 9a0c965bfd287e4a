"""Status page: a public update keeps the id of the incident update it became on Atlassian Statuspage
(`statuspage_update_id`, from the create's or update's answer), so a correction patches exactly that one.
Updates sent before have none: their corrections look the update up as before.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06 20:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("status_page_updates", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("statuspage_update_id", sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("status_page_updates", schema=None) as batch_op:
        batch_op.drop_column("statuspage_update_id")
