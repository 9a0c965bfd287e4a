"""Service-level guards of public updates (no Slack): a resolve that lands first wins."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlmodel import col

from bot.db import Database
from bot.exceptions import InvalidState
from bot.incidents import service as incidents
from bot.incidents.models import Incident, IncidentCreate, Status
from bot.statuspage import service
from bot.statuspage.service import Draft

NOW = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


async def test_an_update_read_before_a_resolve_and_written_after_it_is_refused(db: Database) -> None:
    async with db.session() as session:
        incident = await incidents.create(
            session, data=IncidentCreate(title="Payments fail", declared_by="U0ALICE"), now=NOW
        )
    stale = incident.model_copy()  # what a publish read before the resolve committed
    async with db.session() as session:
        current = await incidents.get(session, number=incident.id or 0)
        await incidents.resolve(session, incident=current, summary="", actor="U0BOB", now=NOW)
    draft = Draft(title="Outage", status="identified", impact="major", components=[], message="Fix rolling out")
    async with db.session() as session:
        with pytest.raises(InvalidState, match="resolved meanwhile"):
            await service.add_update(session, incident=stale, draft=draft, actor="U0ALICE", now=NOW, sync=True)
    async with db.session() as session:
        assert await service.updates(session, incident_id=incident.id or 0) == []
        assert await service.syncs(session, incident_id=incident.id or 0) == []
        resolved = Draft(title="Outage", status="resolved", impact="major", components=[], message="Fixed")
        row = await service.add_update(session, incident=stale, draft=resolved, actor="U0BOB", now=NOW, sync=True)
        assert row.status == "resolved"
        [sync] = await service.syncs(session, incident_id=incident.id or 0)
        assert sync.update_id == row.id


async def test_an_update_written_while_a_resolve_commits_waits_for_it_and_is_refused(db: Database) -> None:
    """The resolve lands between the publish's look at the incident and its commit: the update must not
    follow the resolution (the public incident would be open again, for good)."""
    async with db.session() as session:
        incident = await incidents.create(
            session, data=IncidentCreate(title="Payments fail", declared_by="U0ALICE"), now=NOW
        )
    number = incident.id or 0
    draft = Draft(title="Outage", status="identified", impact="major", components=[], message="Fix rolling out")

    async def publish() -> None:
        async with db.session() as session:
            await service.add_update(session, incident=incident, draft=draft, actor="U0ALICE", now=NOW, sync=True)

    async with db.session() as resolving:
        await resolving.exec(
            update(Incident).where(col(Incident.id) == number).values(status=Status.RESOLVED, resolved_at=NOW)
        )
        publishing = asyncio.create_task(publish())
        done, _ = await asyncio.wait({publishing}, timeout=0.5)
        assert not done  # the publish waits for the resolve in flight
        await resolving.commit()
    with pytest.raises(InvalidState, match="resolved meanwhile"):
        await publishing
    async with db.session() as session:
        assert await service.updates(session, incident_id=number) == []
        assert await service.syncs(session, incident_id=number) == []
