"""Alerts: the offer to resolve an incident once its alerts cleared is claimed on a row of its own
(`alert_resolve_offers`), so two groups clearing at the same instant post it once; each group counts
the times it cleared while linked (`clears`), whose sum names the all-clear an offer covered.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 02:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import bot.db

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "alert_resolve_offers",
        sa.Column("incident_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("offered_through", sa.Integer(), nullable=False),
        sa.Column("claimed_by", sa.Integer(), nullable=True),
        sa.Column("claimed_at", bot.db.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["incident_id"], ["incidents.id"]),
        sa.PrimaryKeyConstraint("incident_id"),
    )
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.add_column(sa.Column("clears", sa.Integer(), nullable=False, server_default="0"))
    # A clear still owed its offer at the upgrade counts once, so its sum is above the new rows' 0.
    op.execute("UPDATE alert_groups SET clears = 1 WHERE resolve_offer_pending")


def downgrade() -> None:
    with op.batch_alter_table("alert_groups", schema=None) as batch_op:
        batch_op.drop_column("clears")
    op.drop_table("alert_resolve_offers")
