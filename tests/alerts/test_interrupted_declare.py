"""An auto-declare interrupted: killed during its channel setup, the stale-declare recovery links the
incident it made (the group names it from the incident's own transaction), even after the alert's
text changed, and as the person's when a person's Declare was killed; killed before its INSERT, it is
declared again within minutes; only slow, it declares and links nothing twice."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from bot.alerts.models import AlertGroup, DeclareState
from bot.clock import FakeClock
from bot.incidents import flows as incident_flows
from bot.incidents.flows import Outcome
from bot.timeline.events import Kind
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, groups, incident_count, processor, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, start_bot


async def test_an_interrupted_auto_declare_is_not_declared_again_after_the_alert_text_changed(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=AUTO)
    bot, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    await processor(bot).stop_retry_loop()  # this test drives the sweeps itself
    try:
        firing = p.am_alert(severity="critical", summary="Checkout error rate is 7.5%")
        gate = fake_slack.hold("conversations.create")  # the declaration is setting its channel up
        await send(bot, p.alertmanager([firing]), settle=False)
        for _ in range(500):
            if fake_slack.held:
                break
            await asyncio.sleep(0.01)
        assert fake_slack.held and await incident_count(bot) == 1
        [sync] = [t for t in bot.deps.background.tasks if t.get_name().startswith("show alert group")]
        sync.cancel()  # kill -9: INC-1 is stored, the group's declare is claimed and never completed
        fake_slack.drop_held()
        gate.set()
        await asyncio.gather(sync, return_exceptions=True)

        # Alertmanager re-sends the group (group_interval); its templated summary has a new value.
        await send(bot, p.alertmanager([dict(firing, annotations={"summary": "Checkout error rate is 9.1%"})]))
        clock.advance(timedelta(minutes=11))  # the declare is stale now
        await processor(bot).sweep()
        await bot.settle()
        await processor(bot).sweep()
        await bot.settle()
        [group] = await groups(bot)
        count = await incident_count(bot)
        assert count == 1, f"one alert, {count} incidents: a second channel, everyone paged twice"
        assert group.incident_id == 1 and group.declare_state == DeclareState.DONE
    finally:
        await stop()


@contextlib.asynccontextmanager
async def started(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> AsyncIterator[tuple[BotHarness, FakeClock]]:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=AUTO)
    bot, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    await processor(bot).stop_retry_loop()  # these tests drive the sweeps themselves
    try:
        yield bot, clock
    finally:
        await stop()


def declares_held_once(monkeypatch: pytest.MonkeyPatch) -> tuple[asyncio.Event, asyncio.Event]:
    """The first declaration waits, after its claim and before its INSERT, until `go` is set."""
    real = incident_flows.declare
    entered, go = asyncio.Event(), asyncio.Event()

    async def declare(*args: Any, **kwargs: Any) -> Outcome:
        if not entered.is_set():
            entered.set()
            await go.wait()
        return await real(*args, **kwargs)

    monkeypatch.setattr(incident_flows, "declare", declare)
    return entered, go


def the_sync(bot: BotHarness) -> asyncio.Task[Any]:
    [sync] = [t for t in bot.deps.background.tasks if t.get_name().startswith("show alert group")]
    return sync


async def sweep_twice(bot: BotHarness) -> None:
    for _ in range(2):
        await processor(bot).sweep()
        await bot.settle()


async def alert_lines(bot: BotHarness, number: int) -> list[str]:
    """The timeline's lines that say how the alert came to the incident (the link)."""
    return [e.text for e in await bot.timeline(number) if e.kind == Kind.ALERT and (e.data or {}).get("how")]


async def test_an_auto_declare_killed_before_its_incident_existed_is_declared_within_minutes(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The declare's claim is all a kill -9 between claim and INSERT leaves: nothing is declared until it
    is recovered, so that must not take the ten minutes a link may take."""
    async with started(fake_slack, database_url, tmp_path) as (bot, clock):
        entered, _go = declares_held_once(monkeypatch)
        await send(bot, p.alertmanager([p.am_alert(severity="critical")]), settle=False)
        await asyncio.wait_for(entered.wait(), 5)
        sync = the_sync(bot)
        sync.cancel()  # kill -9
        await asyncio.gather(sync, return_exceptions=True)
        [group] = await groups(bot)
        assert group.declare_state == DeclareState.CLAIMED and await incident_count(bot) == 0

        clock.advance(timedelta(minutes=2, seconds=1))
        await sweep_twice(bot)
        [group] = await groups(bot)
        assert await incident_count(bot) == 1, "the critical alert is still not an incident after 2 minutes"
        assert group.incident_id == 1 and group.declare_state == DeclareState.DONE
        assert (await bot.incident(1)).channel_id


async def test_a_declare_slower_than_its_recovery_makes_no_second_incident(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with started(fake_slack, database_url, tmp_path) as (bot, clock):
        entered, go = declares_held_once(monkeypatch)
        await send(bot, p.alertmanager([p.am_alert(severity="critical")]), settle=False)
        await asyncio.wait_for(entered.wait(), 5)
        slow = the_sync(bot)

        clock.advance(timedelta(minutes=2, seconds=1))  # presumed dead: recovered and declared again
        for _ in range(2):  # not settled: the slow declare is background work too
            await processor(bot).sweep()
        assert await incident_count(bot) == 1
        go.set()  # it was only slow: it goes on to its INSERT
        await asyncio.gather(slow, return_exceptions=True)
        await bot.settle()

        count = await incident_count(bot)
        assert count == 1, f"one alert, {count} incidents: a second channel, everyone paged twice"
        [group] = await groups(bot)
        assert group.incident_id == 1 and group.declare_state == DeclareState.DONE
        assert len(await alert_lines(bot, 1)) == 1


async def test_a_link_recovered_while_the_declare_was_still_setting_up_is_written_once(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    async with started(fake_slack, database_url, tmp_path) as (bot, clock):
        gate = fake_slack.hold("conversations.create")  # Slack paces channel creation in a storm
        await send(bot, p.alertmanager([p.am_alert(severity="critical")]), settle=False)
        for _ in range(500):
            if fake_slack.held:
                break
            await asyncio.sleep(0.01)
        assert fake_slack.held and await incident_count(bot) == 1
        slow = the_sync(bot)

        clock.advance(timedelta(minutes=11))  # the recovery links INC-1 for it
        await processor(bot).sweep()
        [group] = await groups(bot)
        assert group.declare_state == DeclareState.DONE
        gate.set()  # the channel comes; the declare links the group itself
        await asyncio.gather(slow, return_exceptions=True)
        await bot.settle()

        lines = await alert_lines(bot, 1)
        assert len(lines) == 1, f"the alert's line twice on INC-1's timeline: {lines}"


async def test_a_button_declare_killed_before_its_link_is_recovered_as_the_persons(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """A person's Declare, killed after INC-1 was stored and before the link (as a redeploy leaves it): the
    recovery linked it as declared automatically, by the sender, on the card and the incident's timeline."""
    async with started(fake_slack, database_url, tmp_path) as (bot, clock):
        await send(bot, p.alertmanager([p.am_alert(severity="warning")]))
        await bot.command("declare P2 Checkout errors", user="U0BOB", channel="C0ALERTS")
        [group] = await groups(bot)
        async with bot.deps.db.session() as session:  # the state the killed declare left: claimed, INC-1 named
            await session.exec(
                update(AlertGroup)
                .where(col(AlertGroup.id) == group.id)
                .values(declare_state=DeclareState.CLAIMED, declare_claimed_at=clock.now(), incident_id=1)
            )
            await session.commit()
        clock.advance(timedelta(minutes=11))
        await sweep_twice(bot)
        [group] = await groups(bot)
        assert group.declare_state == DeclareState.DONE and group.declared_how == "button"
        [line] = await alert_lines(bot, 1)
        assert line.startswith("declared from Alertmanager alert"), line
        [event] = [e for e in await bot.timeline(1) if e.kind == Kind.ALERT and (e.data or {}).get("how")]
        assert event.actor == "U0BOB"
