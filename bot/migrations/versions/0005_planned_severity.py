"""Incidents: the severity the escalation was last planned for, so a re-plan lost to a crash is redone.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-06 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        # The `severity` type exists already (the `severity` column's).
        batch_op.add_column(
            sa.Column(
                "planned_severity", sa.Enum("P1", "P2", "P3", "P4", name="severity", create_type=False), nullable=True
            )
        )
    # Incidents open at the upgrade were planned for the severity they have.
    op.execute("UPDATE incidents SET planned_severity = severity")


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_column("planned_severity")
