"""A handler of IncidentChannelReady or IncidentResolved that fails leaves its work not done: the resume
sweep publishes the signal again, with a back-off, and after a few attempts gives it up where people
see it (timeline and channel), instead of noting it done the first time as if it had worked."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.incidents import flows, signal_work
from bot.playbooks import runs
from bot.signals import Bus, IncidentChannelReady, IncidentEvent, IncidentResolved
from bot.slack.blocks import ActionId
from bot.timeline import events
from bot.timeline.models import Kind
from tests.conftest import make_settings
from tests.crash import stay_up
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot, slack_date, until


async def _failures(bot: BotHarness, number: int = 1) -> list[events.UnfinishedWork]:
    return [events.read_as(e, events.UnfinishedWork) for e in await bot.timeline(number) if e.kind == "unfinished_work"]


class Broken:
    """A handler that fails until `mended`, noting when it was tried."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.tried: list[datetime] = []
        self.mended = False

    async def __call__(self, event: IncidentEvent) -> None:
        self.tried.append(self.clock.now())
        if not self.mended:
            raise RuntimeError("a bug")


@asynccontextmanager
async def broken_bot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, *, on: type[IncidentEvent], does: str
) -> AsyncIterator[tuple[BotHarness, FakeClock, Broken]]:
    """The real bot, on a fake clock, with one more handler of `on` that fails (its work: `does`)."""
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        broken = Broken(clock)
        bot.deps.bus.subscribe(on, broken, does=does)
        yield bot, clock, broken


async def test_a_playbook_whose_progress_message_slack_refused_is_shown_at_the_sweeps_next_check(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        # The announcement is the setup's last post; the playbook's progress message comes next.
        gate = fake_slack.hold_after("chat.postMessage", lambda args: args.get("channel") == "C0INCIDENTS")
        await bot.command("declare P1 service:api Checkout is down", settle=False)
        await until(lambda: fake_slack.held)
        fake_slack.fail("chat.postMessage", "fatal_error")
        gate.set()
        await bot.settle()
        incident = await bot.incident(1)
        assert incident.channel_ready_at is None, "the channel's work was noted done though the playbook failed"
        failures = await _failures(bot)
        assert [(f.failed, f.attempt) for f in failures] == [(["start the playbook"], 1)]
        async with bot.deps.db.session() as session:
            run = await runs.current_run(session, incident_id=1)
        assert run is not None and run.progress_ts is None

        clock.advance(timedelta(minutes=2, seconds=30))  # the sweep's grace after a declaration
        assert bot.deps.setup_sweep is not None
        await bot.deps.setup_sweep.check()
        await bot.settle()
        incident = await bot.incident(1)
        async with bot.deps.db.session() as session:
            run = await runs.current_run(session, incident_id=1)
        failures = await _failures(bot)
    assert incident.channel_ready_at is not None
    assert run is not None and run.progress_ts is not None
    assert fake_slack.channels[incident.channel_id or ""].find(run.progress_ts) is not None
    assert len(failures) == 1  # nothing failed the second time


async def test_resolve_work_that_keeps_failing_is_retried_with_a_back_off_then_given_up_and_said(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    async with broken_bot(fake_slack, database_url, tmp_path, on=IncidentResolved, does="tell the customers") as (
        bot,
        clock,
        broken,
    ):
        tried = broken.tried
        incident = await bot.declare()
        channel = incident.channel_id or ""
        await bot.command("resolve rolled back", channel=channel)
        assert (await bot.incident(1)).resolve_handled_at is None
        await stay_up(bot, clock, every=timedelta(seconds=30), times=60)  # half an hour
        incident = await bot.incident(1)
        failures = await _failures(bot)
        lines = [e.text for e in await bot.timeline(1) if e.kind == "unfinished_work"]

    assert len(tried) == signal_work.ATTEMPTS, f"tried {len(tried)} times"
    waits = [later - earlier for earlier, later in zip(tried, tried[1:], strict=False)]
    assert waits[1:] == [timedelta(minutes=m) for m in (1, 2, 4, 8)], waits  # the first waits out the grace too
    assert incident.resolve_handled_at is not None  # given up: the sweep leaves it alone from now on
    assert [f.attempt for f in failures] == list(range(1, signal_work.ATTEMPTS + 1))
    assert all(f.failed == ["tell the customers"] for f in failures)
    assert [f.retry_at is None for f in failures] == [False] * (signal_work.ATTEMPTS - 1) + [True]
    assert "given up" in lines[-1] and "tell the customers" in lines[-1], lines[-1]
    said = [m.text for m in fake_slack.messages(channel) if "stopped trying" in m.text]
    assert len(said) == 1 and "tell the customers" in said[0], said
    drafts = [f for f in fake_slack.files.values() if f.completed and channel in f.channels]
    assert len(drafts) == 1, "a handler that worked did its work again on a retry"


async def test_channel_work_waiting_for_its_retry_when_the_incident_resolves_is_said_dropped(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    async with broken_bot(fake_slack, database_url, tmp_path, on=IncidentChannelReady, does="open the war room") as (
        bot,
        clock,
        broken,
    ):
        tried = broken.tried
        incident = await bot.declare()
        channel = incident.channel_id or ""
        assert [(f.attempt, f.retry_at is not None) for f in await _failures(bot)] == [(1, True)]
        await bot.command("resolve rolled back", channel=channel)  # before the retry, 30 s later
        await stay_up(bot, clock, every=timedelta(seconds=30), times=30)
        incident = await bot.incident(1)
        kinds = [e.kind for e in await bot.timeline(1)]
        failures = await _failures(bot)
        lines = [e.text for e in await bot.timeline(1) if e.kind == "unfinished_work"]
        runs_before = len(tried)
        # A setup run that ends after the resolve (resumed, retried) and fails: not promised a retry either.
        await flows.channel_ready(bot.deps, incident_id=1, actor=None)
        after = await _failures(bot)

    assert incident.channel_ready_at is not None  # the sweep has nothing left to publish
    assert runs_before == 1, "the playbook and the mentions are for open incidents"
    assert [f.retry_at is None for f in failures] == [False, True], "the timeline still promises a retry"
    assert "not tried again" in lines[-1] and "resolved" in lines[-1] and "open the war room" in lines[-1], lines
    # Said before the resolve's post-mortem draft, which reads the timeline.
    assert kinds.index(Kind.UNFINISHED_WORK, kinds.index(Kind.RESOLVED)) < kinds.index(Kind.POSTMORTEM), kinds
    assert not [m for m in fake_slack.messages(channel) if "stopped trying" in m.text], "nothing to do by hand"
    assert len(tried) == 2 and len(after) == 3 and after[-1].retry_at is None, after


@pytest.mark.parametrize("by", ["Retry setup", "a setup run again"])
async def test_retry_setup_after_the_channel_work_was_given_up_starts_a_new_series_of_attempts(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, by: str
) -> None:
    async with broken_bot(fake_slack, database_url, tmp_path, on=IncidentChannelReady, does="open the war room") as (
        bot,
        clock,
        broken,
    ):
        tried = broken.tried
        incident = await bot.declare()
        channel = incident.channel_id or ""
        await stay_up(bot, clock, every=timedelta(seconds=30), times=60)  # given up
        assert len(tried) == signal_work.ATTEMPTS
        assert (await bot.incident(1)).channel_ready_at is not None

        if by == "Retry setup":
            response = await bot.click(ActionId.RETRY_SETUP, "1", channel="C0GENERAL")
            assert response.status_code == 200
        else:  # resumed after a crash, or an alert's sync: the given-up series is over
            await flows.finish_setup(bot.deps, incident_id=1, actor="U0ALICE")
            await bot.settle()
        failures = await _failures(bot)
        assert len(tried) == signal_work.ATTEMPTS + 1
        assert (failures[-1].attempt, failures[-1].retry_at is not None) == (1, True), failures[-1]
        assert (await bot.incident(1)).channel_ready_at is None, "the sweep would never retry it"

        broken.mended = True
        await stay_up(bot, clock, every=timedelta(seconds=30), times=4)  # the retry is 30 s away
        incident = await bot.incident(1)
        gave_up = [m.text for m in fake_slack.messages(channel) if "stopped trying" in m.text]

    assert len(tried) == signal_work.ATTEMPTS + 2
    assert incident.channel_ready_at is not None
    assert len(failures) == signal_work.ATTEMPTS + 1, failures
    assert len(gave_up) == 1, "the first series was given up once, the second was not"


async def test_retry_setup_while_the_channel_work_is_being_retried_starts_the_count_again(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    async with broken_bot(fake_slack, database_url, tmp_path, on=IncidentChannelReady, does="open the war room") as (
        bot,
        clock,
        _,
    ):
        await bot.declare()
        await stay_up(bot, clock, every=timedelta(seconds=30), times=8)  # the grace, then two retries
        assert [f.attempt for f in await _failures(bot)] == [1, 2, 3]
        await bot.click(ActionId.RETRY_SETUP, "1", channel="C0GENERAL")
        last = (await _failures(bot))[-1]
        incident = await bot.incident(1)
    assert (last.attempt, last.retry_at) == (1, clock.now() + signal_work.RETRY_AFTER), last
    assert incident.channel_ready_at is None


async def test_every_handler_runs_and_the_publisher_hears_which_failed() -> None:
    bus = Bus()
    ran = []

    async def fails(event: IncidentEvent) -> None:
        ran.append("fails")
        raise RuntimeError("a bug")

    async def works(event: IncidentEvent) -> None:
        ran.append("works")

    bus.subscribe(IncidentResolved, fails, does="share the draft")
    bus.subscribe(IncidentResolved, works)
    assert await bus.publish(IncidentResolved(incident_id=1, actor=None)) == ["share the draft"]
    assert ran == ["fails", "works"]
    await bus.notify(IncidentResolved(incident_id=1, actor=None))  # the same, the failure only logged
    assert ran == ["fails", "works"] * 2


async def test_the_retry_time_of_failed_work_is_shown_in_the_reader_s_time_zone(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """`/incident timeline` shows when the work is tried again as Slack's date token; the stored line,
    which the post-mortem reads, keeps its UTC text."""
    async with broken_bot(fake_slack, database_url, tmp_path, on=IncidentChannelReady, does="open the war room") as (
        bot,
        _,
        _,
    ):
        incident = await bot.declare()
        [failure] = await _failures(bot)
        [stored] = [e.text for e in await bot.timeline(1) if e.kind == "unfinished_work"]
        await bot.command("timeline", channel=incident.channel_id or "")
        reply = bot.last_reply()
    assert failure.retry_at is not None
    assert stored.endswith(f"tried again after {failure.retry_at:%H:%M:%S} UTC"), stored
    assert f"tried again after {slack_date(failure.retry_at, seconds=True)}" in reply, reply
