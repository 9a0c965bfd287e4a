"""Two replicas, one database: each due channel archive happens once (one last message, one archive call)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.archive.models import ChannelArchive
from bot.clock import FakeClock
from tests.fakes.slack_api import FakeSlack
from tests.fault.support import unpace_channel_creation
from tests.replicas.conftest import REPLICAS_ONLY, Replicas, two_bots

pytestmark = REPLICAS_ONLY

INCIDENTS = 8
CONFIG: dict[str, Any] = {"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS", "archive_after": "1d"}}


@pytest.fixture
async def archiving_replicas(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[Replicas]:
    async with two_bots(
        fake_slack, database_url, tmp_path, CONFIG, prepare=unpace_channel_creation, clock=FakeClock()
    ) as both:
        yield both


async def test_two_replicas_archive_each_channel_once(archiving_replicas: Replicas) -> None:
    replicas = archiving_replicas
    a, b = replicas.a, replicas.b
    channels = []
    for n in range(INCIDENTS):
        incident = await (a if n % 2 else b).declare(f"P2 Race {n}")
        channels.append(incident.channel_id or "")
        await (b if n % 2 else a).command("resolve fixed", channel=incident.channel_id or "")
    await replicas.settle()
    async with a.deps.db.session() as session:
        planned = list((await session.exec(select(ChannelArchive))).all())
    assert len(planned) == INCIDENTS and not any(t.sent_at for t in planned)

    clock = a.deps.clock
    assert isinstance(clock, FakeClock) and clock is b.deps.clock
    clock.advance(timedelta(days=1, minutes=1))
    runs = [deps.archiver.run_due() for deps in (a.deps, b.deps) if deps.archiver for _ in range(2)]
    assert len(runs) == 4
    archived = await asyncio.gather(*runs)
    await replicas.settle()

    assert sum(archived) == INCIDENTS
    calls = replicas.fake.calls_to("conversations.archive")
    assert sorted(c.args["channel"] for c in calls) == sorted(channels)
    assert all(c.response["ok"] for c in calls), "a second archive call would get already_archived"
    for channel in channels:
        assert replicas.fake.channels[channel].archived
        goodbyes = [m for m in replicas.fake.messages(channel) if "being archived" in m.text]
        assert len(goodbyes) == 1
