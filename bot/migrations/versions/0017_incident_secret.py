"""Incidents: a private incident's secret, from which what names it outside its channel is derived (its
`#incidents` announcement's metadata, its PagerDuty dedup key). Rows from before have none: they keep the
names they were given then (PagerDuty's alert is found by the key it was triggered with).

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-07 17:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel.sql.sqltypes
from alembic import op

revision: str = "0017"
down_revision: str | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.add_column(sa.Column("secret", sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("secret")
