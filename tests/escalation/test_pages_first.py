"""Pages first: what follows a DM (and the setup of other incidents) waits while other DMs are due.

One event loop serves the whole bot, first come, first served; without this, a page that falls due
in a storm of declarations waits behind every setup step in flight (benchmarks/page_lateness.py).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from typing import Literal

from sqlmodel import select

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.db import Database
from bot.escalation.pages import planning
from bot.incidents import setup_rows
from bot.incidents.models import Incident
from bot.tasks import PagesFirst
from tests.conftest import make_settings
from tests.escalation.conftest import FakePager, MakeEscalator, declare
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot, until

ONE_LEVEL = BotConfig.model_validate(
    {"escalation": {"stop_on": "resolve", "levels": [{"name": "First", "after": "0m", "notify": ["U0LEAD"]}]}}
)


async def plan(db: Database, clock: FakeClock, *incidents: Incident) -> None:
    """Pages planned, none sent yet (as after a declaration, before the sweep)."""
    async with db.session() as session:
        for incident in incidents:
            await planning.plan_pages(session, incident=incident, escalation=ONE_LEVEL.escalation, now=clock.now())


# --- the rule itself ------------------------------------------------------------------------


async def test_work_that_can_wait_runs_width_at_a_time() -> None:
    priority = PagesFirst(width=2)
    running, most = 0, 0
    release = asyncio.Event()

    async def setup() -> None:
        nonlocal running, most
        async with priority.later():
            running += 1
            most = max(most, running)
            await release.wait()
            running -= 1

    tasks = [asyncio.create_task(setup()) for _ in range(5)]
    await until(lambda: running == 2)
    await asyncio.sleep(0.02)
    assert most == 2
    release.set()
    await asyncio.gather(*tasks)
    assert most == 2


async def test_a_step_waits_until_the_dms_are_out() -> None:
    priority = PagesFirst(patience=5)
    step_done = asyncio.Event()

    async def step() -> None:
        await priority.step()
        step_done.set()

    async with priority.page() as dms_sent:
        waiter = asyncio.create_task(step())
        await asyncio.sleep(0.05)
        assert not step_done.is_set()
        dms_sent()
        await asyncio.wait_for(step_done.wait(), 1)
    await waiter
    await asyncio.wait_for(priority.step(), 0.1)  # nothing due: no wait at all


async def test_a_step_waits_no_longer_than_the_patience() -> None:
    priority = PagesFirst(patience=0.05)
    loop = asyncio.get_running_loop()
    async with priority.page():
        started = loop.time()
        await priority.step()
        assert 0.04 <= loop.time() - started < 1


async def test_a_delivery_that_fails_does_not_hold_the_rest_back() -> None:
    priority = PagesFirst(patience=5)
    try:
        async with priority.page():
            raise RuntimeError("Slack is down")
    except RuntimeError:
        pass
    await asyncio.wait_for(priority.step(), 0.1)


# --- in the escalator -------------------------------------------------------------------------


def hold_first_dm(pager: FakePager) -> tuple[asyncio.Event, asyncio.Event]:
    """The first DM does not reach Slack until `release` is set; the others go through.

    Returns (release, entered): `entered` is set once the first DM is on its way.
    """
    release, entered = asyncio.Event(), asyncio.Event()
    dms = 0

    async def held(user: str) -> None:
        nonlocal dms
        dms += 1
        if dms == 1:
            entered.set()
            await release.wait()

    pager.on_dm = held
    return release, entered


async def test_a_pages_channel_mention_waits_for_another_pages_dm(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(ONE_LEVEL, priority=PagesFirst(patience=5))
    first = await declare(db, clock, title="Checkout down", channel_id="C0FIRST")
    second = await declare(db, clock, title="Search down", channel_id="C0SECOND")
    assert first.id is not None and second.id is not None
    await plan(db, clock, first, second)
    release, _ = hold_first_dm(pager)
    sweep = asyncio.create_task(escalator.run_due())
    # The second incident's DM goes out while the first is stuck; its mention waits for the first DM.
    await until(lambda: len(pager.dms) == 1)
    await asyncio.sleep(0.1)
    assert pager.reports == [] and pager.invites == []
    release.set()
    assert (await asyncio.wait_for(sweep, 5)).pages == 2
    assert sorted(incident for incident, _ in pager.reports) == sorted([first.id, second.id])


async def test_a_stuck_dm_holds_other_mentions_back_only_for_the_patience(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(ONE_LEVEL, priority=PagesFirst(patience=0.05))
    await plan(db, clock, *[await declare(db, clock, title=f"Outage {n}", channel_id=f"C0INC{n}") for n in range(2)])
    release, _ = hold_first_dm(pager)
    sweep = asyncio.create_task(escalator.run_due())
    await until(lambda: len(pager.reports) == 1)  # the other page's mention went out anyway
    release.set()
    assert (await asyncio.wait_for(sweep, 5)).pages == 2


# --- through the app ------------------------------------------------------------------------


class CountedSlots(asyncio.Semaphore):
    """PagesFirst's slots, counting the work waiting for one (a free slot is taken without waiting)."""

    waiting = 0

    async def acquire(self) -> Literal[True]:
        self.waiting += 1
        try:
            return await super().acquire()
        finally:
            self.waiting -= 1


async def test_a_storm_of_declarations_sets_up_width_channels_at_a_time(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    # No page falls due here, so only the setups take turns for the slot.
    no_page_yet = {"escalation": {"levels": [{"name": "On-call", "after": "1h", "notify": ["U0LEAD"]}]}}
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=no_page_yet)
    priority = PagesFirst(width=1)
    slots = priority._slots = CountedSlots(1)

    def one_at_a_time(deps: object) -> None:
        deps.priority = priority  # type: ignore[attr-defined]

    gate = fake_slack.hold("conversations.create", lambda args: "first-outage" in str(args.get("name")))
    async with running_bot(fake=fake_slack, settings=settings, customize=one_at_a_time) as bot:
        try:
            await bot.command("declare P1 First outage", settle=False)
            await until(lambda: len(fake_slack.held) == 1)
            await bot.command("declare P1 Second outage", settle=False)
            # Its work runs after the ack: wait (not a fixed sleep) until its setup queues for the one slot,
            # or (the defect) creates its channel beside the first's.
            await until(lambda: slots.waiting == 1 or bool(fake_slack.calls_to("conversations.create")), within=15)
            # The second incident exists but its setup waits for the first's.
            async with bot.deps.db.session() as session:
                assert len((await session.exec(select(Incident))).all()) == 2
            assert [c.args["name"] for c in fake_slack.calls_to("conversations.create")] == []
        finally:
            gate.set()
        await bot.settle()
    names = [c.args["name"] for c in fake_slack.calls_to("conversations.create")]
    assert names == ["inc-1-first-outage", "inc-2-second-outage"]


# --- the sweep: a page starts when it is due, not when other pages' mentions are done ---------

TWO_LEVELS = BotConfig.model_validate(
    {
        "escalation": {
            "stop_on": "resolve",
            "levels": [
                {"name": "First", "after": "0m", "notify": ["U0LEAD"]},
                {"name": "Second", "after": "0m", "notify": ["U0CTO"]},
            ],
        }
    }
)


def hold_reports(pager: FakePager) -> asyncio.Event:
    """Every channel mention waits until the returned event is set."""
    release = asyncio.Event()

    async def held(incident_id: int) -> None:
        await release.wait()

    pager.on_report = held
    return release


async def test_the_next_level_is_dmed_while_the_previous_levels_mention_is_stuck(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(TWO_LEVELS)
    incident = await declare(db, clock)
    async with db.session() as session:
        await planning.plan_pages(session, incident=incident, escalation=TWO_LEVELS.escalation, now=clock.now())
    release = hold_reports(pager)
    sweep = asyncio.create_task(escalator.run_due())
    await until(lambda: len(pager.dms) == 2)
    assert pager.paged() == [(1, "U0LEAD"), (2, "U0CTO")]  # in order, and level 2 did not wait
    assert pager.reports == []
    release.set()
    assert (await asyncio.wait_for(sweep, 5)).pages == 2
    assert pager.levels() == [1, 2]  # the mentions keep the levels' order


async def test_a_page_that_falls_due_during_a_sweep_goes_out_while_older_mentions_are_stuck(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    later = BotConfig.model_validate(
        {"escalation": {"stop_on": "resolve", "levels": [{"name": "First", "after": "1m", "notify": ["U0LEAD"]}]}}
    )
    escalator = make_escalator(later)
    first = await declare(db, clock, title="Checkout down", channel_id="C0FIRST")
    assert first.id is not None
    await escalator.incident_declared(first.id)  # due in a minute
    clock.advance(timedelta(minutes=1))
    release = hold_reports(pager)
    sweep = asyncio.create_task(escalator.run_due())
    await until(lambda: len(pager.dms) == 1)
    second = await declare(db, clock, title="Search down", channel_id="C0SECOND")
    assert second.id is not None
    await escalator.incident_declared(second.id)  # tells the sweep in progress about its page
    clock.advance(timedelta(minutes=1))
    await until(lambda: len(pager.dms) == 2, within=3)  # the sweep looks at the clock at least every second
    assert [inc for _, inc, _ in pager.dms] == [first.id, second.id]
    assert not sweep.done() and pager.reports == []
    release.set()
    assert (await asyncio.wait_for(sweep, 5)).pages == 2


async def test_channel_ready_leaves_a_page_whose_dm_is_going_out_to_that_page(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(ONE_LEVEL)
    incident = await declare(db, clock, channel_id=None)  # its channel is still being set up
    assert incident.id is not None
    await plan(db, clock, incident)
    release, entered = hold_first_dm(pager)
    sweep = asyncio.create_task(escalator.run_due())
    await asyncio.wait_for(entered.wait(), 5)  # the page's DM is on its way (held)
    async with db.session() as session:
        await setup_rows.set_channel(
            session, incident_id=incident.id, channel_id="C0INC1", channel_name="inc-1", now=clock.now()
        )
    assert await escalator.channel_ready(incident.id) == 0  # not "could not reach U0LEAD yet"
    release.set()
    assert (await asyncio.wait_for(sweep, 5)).pages == 1
    ((_, report),) = pager.reports  # the page mentions itself once its DM is out
    assert report.paged == ["U0LEAD"] and report.retrying == {}
    assert pager.invites == [("C0INC1", ["U0LEAD"])]
