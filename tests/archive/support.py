"""What the archive tests share: the config, the archiver, its timers and a resolved incident."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlmodel import col, select

from bot.archive.flows import Archiver
from bot.archive.models import ChannelArchive
from bot.clock import FakeClock
from bot.incidents.models import Incident
from tests.harness import BotHarness

CONFIG: dict[str, Any] = {"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS", "archive_after": "7d"}}


def archiver(bot: BotHarness) -> Archiver:
    found = bot.deps.archiver
    assert isinstance(found, Archiver)
    return found


async def timers(bot: BotHarness) -> list[ChannelArchive]:
    async with bot.deps.db.session() as session:
        return list((await session.exec(select(ChannelArchive).order_by(col(ChannelArchive.id)))).all())


async def resolved_incident(bot: BotHarness, clock: FakeClock, title: str = "P1 Checkout is down") -> Incident:
    incident = await bot.declare(title)
    clock.advance(timedelta(minutes=30))
    await bot.command("resolve rolled back", channel=incident.channel_id or "")
    return await bot.incident(incident.id or 0)
