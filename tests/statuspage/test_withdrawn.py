"""A withdrawn public incident after the withdrawal: no reminders to publish, and no "resolved" update that
puts it back on the page, whether the resolution's publish read the page before the withdrawal or raced it."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import text
from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FakeClock
from bot.incidents.models import Incident, Status
from bot.statuspage import flows, service
from bot.statuspage.models import PublicUpdate
from bot.statuspage.service import Draft
from tests.conftest import BACKEND
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import page_of, public

REMINDER = "the public has heard nothing"


def _reminders(bot: BotHarness, channel: str) -> int:
    return len([m for m in bot.fake.messages(channel) if REMINDER in m.text])


async def test_a_withdrawn_incident_is_not_reminded_until_it_is_published_again(
    sbot: BotHarness, clock: FakeClock
) -> None:
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    page = page_of(bot)
    await bot.command("publish critical Checkout is down for everyone.", channel=channel)
    await bot.command("unpublish", channel=channel, user="U0BOB")
    assert "Withdrew" in bot.last_reply(), bot.replies()
    await bot.settle()

    for _ in range(3):  # an hour: the withdrawal was on purpose, nobody is nagged to publish
        clock.advance(timedelta(minutes=20))
        await page.sweep()
    assert _reminders(bot, channel) == 0
    await bot.command("severity P2", channel=channel)  # a severity change does not plan one either
    await bot.settle()
    clock.advance(timedelta(minutes=20))
    await page.sweep()
    assert _reminders(bot, channel) == 0
    async with bot.deps.db.session() as session:
        rows = await service.reminders(session, incident_id=incident.id or 0)
    assert all(r.sent_at is not None or r.cancelled_at is not None for r in rows)

    # Published again: reminded as after any publish, once the interval has passed since it.
    await bot.command("publish major Checkout fails for some cards.", channel=channel)
    await bot.settle()
    clock.advance(timedelta(minutes=14))
    await page.sweep()
    assert _reminders(bot, channel) == 0
    clock.advance(timedelta(minutes=2))
    await page.sweep()
    assert _reminders(bot, channel) == 1


async def test_a_resolution_that_read_the_page_before_the_withdrawal_publishes_nothing(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    """The resolution's publish read the last public update, then the withdrawal committed: its "resolved"
    update would be the incident's only public one, back on the page and on Statuspage."""
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command("publish critical Checkout is down for everyone.", channel=channel)
    async with bot.deps.db.session() as session:
        last = await service.last_update(session, incident_id=incident.id or 0)
    assert last is not None
    await bot.command("unpublish", channel=channel)
    await bot.settle()

    draft = Draft(title=last.title, status="resolved", impact=last.impact, components=last.components, message="")
    async with bot.deps.db.session() as session:
        published = await service.add_resolution(
            session, incident=incident, draft=draft, actor="bot", now=bot.deps.clock.now(), sync=True
        )
    assert published is None
    await _nothing_public(bot, incident, statuspage)


async def _nothing_public(bot: BotHarness, incident: Incident, statuspage: FakeStatuspage) -> None:
    await page_of(bot).sweep()
    await bot.settle()
    async with bot.deps.db.session() as session:
        assert await service.last_update(session, incident_id=incident.id or 0) is None
    summary, html, _ = await public(bot)
    assert summary["incidents"] == [] and "Checkout is down" not in html
    assert statuspage.incidents == {}


# --- racing on PostgreSQL ---------------------------------------------------------------------

POSTGRES_ONLY = pytest.mark.skipif(
    BACKEND != "postgresql",
    reason="a race between two transactions writing at once; SQLite serialises writers (its write lock)",
)


async def _waiting(session: AsyncSession, count: int) -> None:
    """Until `count` other transactions of this database wait for a lock (no sleeping on a guess)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(400):
        if (await session.exec(query)).scalar_one() >= count:  # type: ignore[call-overload]
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"{count} transaction(s) never waited for a lock")


async def _resolved_in_database(bot: BotHarness, incident: Incident) -> None:
    """The resolve committed; its signal's publish of "resolved" is what the test runs itself."""
    async with bot.deps.db.session() as session:
        row = await session.get(Incident, incident.id)
        assert row is not None
        row.status, row.resolved_at = Status.RESOLVED, bot.deps.clock.now()
        session.add(row)
        await session.commit()


async def _race(bot: BotHarness, *, withdraw_first: bool) -> Any:
    """Both writers pause at their timeline insert, held by a test transaction, in the order asked for."""
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command("publish critical Checkout is down for everyone.", channel=channel)
    await bot.settle()
    await _resolved_in_database(bot, incident)
    resolution: asyncio.Task[Any] | None = None
    async with bot.deps.db.session() as held:
        await held.exec(text("LOCK TABLE timeline_events IN SHARE MODE"))  # type: ignore[call-overload]
        if not withdraw_first:
            resolution = asyncio.create_task(
                flows.incident_resolved(bot.deps, incident_id=incident.id or 0, actor="U0A")
            )
            await _waiting(held, 1)
        await bot.command("unpublish", channel=channel, user="U0BOB", settle=False)
        await _waiting(held, 1 if withdraw_first else 2)
        if withdraw_first:
            resolution = asyncio.create_task(
                flows.incident_resolved(bot.deps, incident_id=incident.id or 0, actor="U0A")
            )
            await _waiting(held, 2)
        await held.commit()
    assert resolution is not None
    published = await resolution
    await bot.settle()
    assert "Withdrew" in bot.last_reply(), bot.replies()
    return incident, published


@POSTGRES_ONLY
async def test_a_withdrawal_waits_for_a_resolution_in_flight_and_withdraws_it_too(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    incident, published = await _race(sbot, withdraw_first=False)
    assert published is not None and published.update.status == "resolved"  # it went out, then was withdrawn
    async with sbot.deps.db.session() as session:
        rows = (await session.exec(select(PublicUpdate).where(PublicUpdate.incident_id == incident.id))).all()
    assert [(r.status, r.withdrawn_by) for r in rows] == [("investigating", "U0BOB"), ("resolved", "U0BOB")]
    await _nothing_public(sbot, incident, statuspage)


@POSTGRES_ONLY
async def test_a_resolution_waits_for_a_withdrawal_in_flight_and_publishes_nothing(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    incident, published = await _race(sbot, withdraw_first=True)
    assert published is None
    async with sbot.deps.db.session() as session:
        rows = (await session.exec(select(PublicUpdate).where(PublicUpdate.incident_id == incident.id))).all()
    assert [(r.status, r.withdrawn_by) for r in rows] == [("investigating", "U0BOB")]
    await _nothing_public(sbot, incident, statuspage)
