"""A resolve whose process dies before its signal is handled: the sweep publishes the resolution, once."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from bot.clock import FakeClock
from bot.statuspage import flows
from bot.statuspage import service as statuspage_service
from tests.crash import resolve_then_die
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import StartBot, page_of, public


async def test_a_resolve_interrupted_by_a_crash_still_resolves_the_public_incident(
    statuspage: FakeStatuspage, database_url: str, clock: FakeClock, start_page_bot: StartBot
) -> None:
    async with start_page_bot() as bot:
        incident = await bot.declare("P1 service:api Payments fail")
        await bot.command("publish major We are investigating.", channel=incident.channel_id or "")
        assert statuspage.incidents and (await public(bot))[0]["incidents"]

    await resolve_then_die(database_url, clock=clock)

    clock.advance(timedelta(seconds=30))
    async with start_page_bot() as bot:
        await bot.settle()
        for _ in range(3):  # the bot stays up for a while: its sweeps run
            clock.advance(timedelta(minutes=1))
            await page_of(bot).sweep()
            await bot.settle()
        summary, _, _ = await public(bot)
        assert (await bot.incident(1)).status == "resolved"
        assert summary["incidents"] == [], "the public page still shows the resolved incident as ongoing"
        assert summary["status"]["indicator"] == "none"
        [external] = statuspage.incidents.values()
        assert external.status == "resolved", "Atlassian Statuspage still shows it unresolved"
        async with bot.deps.db.session() as session:
            statuses = [u.status for u in await statuspage_service.updates(session, incident_id=1)]
        assert statuses == ["investigating", "resolved"]


async def test_the_resolution_is_published_once_when_the_resolve_and_the_sweeps_race(
    sbot: BotHarness, clock: FakeClock
) -> None:
    incident = await sbot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await sbot.command("publish major We are investigating.", channel=channel)
    await resolve_then_die(sbot.settings.database_url, clock=clock)
    clock.advance(timedelta(minutes=1))

    # The resolving process's handler, and two replicas' sweeps, all at once.
    await asyncio.gather(
        flows.incident_resolved(sbot.deps, incident_id=1, actor="U0ALICE"),
        page_of(sbot).sweep(),
        page_of(sbot).sweep(),
    )
    await sbot.settle()

    async with sbot.deps.db.session() as session:
        statuses = [u.status for u in await statuspage_service.updates(session, incident_id=1)]
    assert statuses == ["investigating", "resolved"]
    told = [m for m in sbot.fake.messages(channel) if "published to the status page: *resolved*" in m.text]
    assert len(told) == 1
