"""Migrations 2 and 3 bring a database of the previous release up to date on both engines."""

from __future__ import annotations

from sqlalchemy import inspect, text

from bot.db import Database
from bot.incidents.models import ActionItem, Incident

NEW = {
    "incidents": ["impact_started_at"],
    "action_items": ["issue_url", "issue_key", "issue_checked_at", "issue_claimed_at"],
}


async def _columns(db: Database, table: str) -> set[str]:
    async with db.engine.connect() as conn:
        return await conn.run_sync(lambda c: {col["name"] for col in inspect(c).get_columns(table)})


async def test_migrating_from_version_1(db: Database) -> None:
    # The previous release's shape: the new columns absent, schema_version 1.
    async with db.engine.begin() as conn:
        for table, columns in NEW.items():
            for column in columns:
                await conn.execute(text(f"ALTER TABLE {table} DROP COLUMN {column}"))
        await conn.execute(text("DELETE FROM schema_version"))
        await conn.execute(text("INSERT INTO schema_version (version) VALUES (1)"))
    for table, columns in NEW.items():
        assert not set(columns) & await _columns(db, table)

    await db.migrate()
    for table, columns in NEW.items():
        assert set(columns) <= await _columns(db, table)
    async with db.engine.connect() as conn:
        versions = (await conn.execute(text("SELECT version FROM schema_version ORDER BY version"))).scalars().all()
    assert versions[-1] >= 3
    async with db.session() as session:  # and the models read and write them
        from datetime import UTC, datetime

        incident = Incident(title="t", declared_by="U0A", declared_at=datetime.now(UTC))
        incident.impact_started_at = datetime(2026, 1, 1, tzinfo=UTC)
        session.add(incident)
        await session.commit()
        item = ActionItem(incident_id=incident.id or 0, text="x", created_by="U0A", created_at=datetime.now(UTC))
        item.issue_url = "https://github.com/acme/api/issues/1"
        session.add(item)
        await session.commit()
        await session.refresh(incident)
        assert incident.impact_started_at == datetime(2026, 1, 1, tzinfo=UTC)
