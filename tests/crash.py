"""The shared steps of the crash tests: what a kill -9 left committed, and a restarted bot that stays up."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.incidents import service as incidents
from bot.settings import normalise_database_url
from tests.harness import BotHarness


async def resolve_then_die(database_url: str, *, clock: FakeClock, number: int = 1) -> None:
    """What `/incident resolve` commits first; the process dies before IncidentResolved reaches a handler."""
    db = Database(normalise_database_url(database_url))
    try:
        async with db.session() as session:
            row = await incidents.get(session, number=number)
            await incidents.resolve(session, incident=row, summary="rolled back", actor="U0ALICE", now=clock.now())
    finally:
        await db.dispose()


async def stay_up(bot: BotHarness, clock: FakeClock, *, every: timedelta, times: int) -> None:
    """The restarted bot stays up `times` × `every`: its resume sweep and its timers run as their wake-ups would."""
    await bot.settle()
    assert bot.deps.scheduler is not None and bot.deps.setup_sweep is not None
    for _ in range(times):
        clock.advance(every)
        await bot.deps.setup_sweep.check()
        await bot.deps.scheduler.run()
        await bot.settle()
