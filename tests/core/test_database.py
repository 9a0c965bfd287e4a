"""Database basics on both engines: UTC round trip, idempotent migration, indexes for hot queries.

Migrations themselves: tests/core/test_migrations.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.exc import IntegrityError

from bot.config import Severity
from bot.db import Database
from bot.incidents import service
from bot.incidents.models import Incident, IncidentCreate
from bot.migrations.run import head


async def test_times_come_back_as_aware_utc(db: Database) -> None:
    plus_two = datetime(2026, 11, 20, 11, 0, tzinfo=timezone(timedelta(hours=2)))
    async with db.session() as session:
        incident = await service.create(
            session, data=IncidentCreate(title="t", severity=Severity.P3, declared_by="U1"), now=plus_two
        )
    async with db.session() as session:
        stored = await service.get(session, number=incident.id or 0)
    assert stored.declared_at == datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    assert stored.declared_at.tzinfo is not None


async def test_migrate_twice_is_harmless_and_records_the_revision(db: Database) -> None:
    await db.migrate()
    async with db.engine.connect() as conn:
        revisions = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalars().all()
    assert revisions == [head()]


async def test_hot_queries_have_indexes(db: Database) -> None:
    async with db.engine.connect() as conn:

        def indexes(sync_conn: object, table: str) -> set[str]:
            return {i["name"] for i in inspect(sync_conn).get_indexes(table)}  # type: ignore[arg-type]

        incident_indexes = await conn.run_sync(indexes, "incidents")
        timeline_indexes = await conn.run_sync(indexes, "timeline_events")
    assert {"ix_incidents_status", "ix_incidents_channel_id"} <= incident_indexes
    assert "ix_timeline_incident_at" in timeline_indexes


async def test_incident_numbers_are_sequential(db: Database) -> None:
    async with db.session() as session:
        numbers = []
        for n in range(3):
            incident = await service.create(
                session, data=IncidentCreate(title=f"t{n}", declared_by="U1"), now=datetime.now(UTC)
            )
            numbers.append(incident.id)
    assert numbers == [1, 2, 3]


async def test_a_database_error_does_not_carry_what_was_written(db: Database) -> None:
    """A failed write is logged with its error (`log.exception`): the values it carried (a private
    incident's title, a note) must not ride along into the logs, which are read outside its channel."""
    secret = "Leaked credentials in the payroll repo"
    async with db.session() as session:
        first = await service.create(
            session, data=IncidentCreate(title="t", declared_by="U1", private=True), now=datetime.now(UTC)
        )
    async with db.session() as session:
        session.add(Incident(id=first.id, title=secret, declared_by="U1", declared_at=datetime.now(UTC)))
        with pytest.raises(IntegrityError) as failed:
            await session.commit()
    assert "INSERT INTO incidents" in str(failed.value)  # the statement is still there to debug with
    assert secret not in str(failed.value)
