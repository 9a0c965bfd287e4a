"""Setups a crash interrupted are resumed once their lease has expired, and the declarer told;
restarts and rollbacks a crash interrupted are closed as `interrupted`, with a line in the channel.

The crash itself (kill -9 at each step, a real process) is in tests/fault/test_setup_kill9.py;
here the clock is injected and the sweep's check is called directly, so nothing waits on timers.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import update
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.config import Severity
from bot.incidents import service, setup_rows
from bot.incidents.models import Incident, IncidentCreate
from bot.incidents.recovery import resume_setups
from bot.ops import recovery as ops_recovery
from bot.ops.models import AuditLog, Outcome
from bot.timeline.models import Kind
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

CONFIG = {"services": {"gateway": {"health_url": "http://127.0.0.1:1/health", "deploy_timeout": "10m"}}}


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(fake_slack: FakeSlack, database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[BotHarness]:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as harness:
        yield harness


async def stranded(bot: BotHarness, clock: FakeClock, *, claimed: bool = True, private: bool = False) -> int:
    """An incident as a process killed mid-setup leaves it: the row, maybe its lease, nothing else."""
    async with bot.deps.db.session() as session:
        incident = await service.create(
            session,
            data=IncidentCreate(title="Checkout is down", severity=Severity.P1, declared_by="U0ALICE", private=private),
            now=clock.now(),
        )
        assert incident.id is not None
        if claimed:
            assert await setup_rows.claim_setup(session, incident_id=incident.id, now=clock.now())
    return incident.id


async def test_a_setup_interrupted_is_resumed_once_its_lease_expired_and_the_declarer_told(
    bot: BotHarness, clock: FakeClock, fake_slack: FakeSlack
) -> None:
    number = await stranded(bot, clock)
    clock.advance(setup_rows.SETUP_LEASE - timedelta(seconds=1))
    assert await resume_setups(bot.deps) == []  # the lease may still be a live run's

    clock.advance(timedelta(seconds=2))
    assert await resume_setups(bot.deps) == [number]
    await bot.settle()

    incident = await bot.incident(number)
    assert incident.channel_id and incident.summary_ts and incident.announcement_ts
    assert incident.setup_claimed_at is None and incident.setup_error is None
    (dm,) = fake_slack.dms("U0ALICE")
    assert "INC-1" in dm.text and "finished the setup" in dm.text and f"<#{incident.channel_id}>" in dm.text
    assert any(e.kind == Kind.SETUP and "resumed" in e.text for e in await bot.timeline(number))
    assert await resume_setups(bot.deps) == []  # done: nothing left to resume
    assert len(fake_slack.calls_to("conversations.create")) == 1


async def test_the_dm_about_a_private_incidents_resumed_setup_names_no_title(
    bot: BotHarness, clock: FakeClock, fake_slack: FakeSlack
) -> None:
    """The DM is outside the private channel: the incident by its number and channel, its title read there."""
    number = await stranded(bot, clock, private=True)
    clock.advance(setup_rows.SETUP_LEASE + timedelta(seconds=1))
    assert await resume_setups(bot.deps) == [number]
    await bot.settle()
    incident = await bot.incident(number)
    assert incident.private and fake_slack.channels[incident.channel_id or ""].is_private
    (dm,) = fake_slack.dms("U0ALICE")
    assert "INC-1" in dm.text and "finished the setup" in dm.text and f"<#{incident.channel_id}>" in dm.text
    assert "Checkout" not in f"{dm.text} {dm.blocks}"


async def test_an_incident_whose_setup_never_started_is_resumed_after_a_lease(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Killed between committing the row and claiming the setup: no lease, no channel, no error."""
    number = await stranded(bot, clock, claimed=False)
    assert await resume_setups(bot.deps) == []  # a live declaration is about to claim it
    clock.advance(setup_rows.SETUP_LEASE + timedelta(seconds=1))
    assert await resume_setups(bot.deps) == [number]
    await bot.settle()
    assert (await bot.incident(number)).summary_ts is not None


async def test_a_setup_that_failed_or_an_old_or_resolved_incident_is_left_alone(
    bot: BotHarness, clock: FakeClock
) -> None:
    failed = await stranded(bot, clock, claimed=False)
    async with bot.deps.db.session() as session:
        await setup_rows.record_setup(session, incident_id=failed, now=clock.now(), values={"setup_error": "x failed"})
    resolved = await stranded(bot, clock)
    async with bot.deps.db.session() as session:
        await service.resolve(
            session, incident=await service.get(session, number=resolved), summary="", actor="U0BOB", now=clock.now()
        )
    clock.advance(setup_rows.RESUME_WITHIN + timedelta(minutes=1))
    await stranded(bot, clock)  # the only one that qualifies once its lease expires ...
    clock.advance(setup_rows.SETUP_LEASE + timedelta(seconds=1))
    assert await resume_setups(bot.deps) == [3]  # ... the failed one is the Retry button's, the resolved is over


# --- restarts and rollbacks -------------------------------------------------------------------


async def started_row(bot: BotHarness, clock: FakeClock, *, ago: timedelta) -> int:
    async with bot.deps.db.session() as session:
        row = AuditLog(
            at=clock.now() - ago,
            actor="U0LEAD",
            action="restart",
            service="gateway",
            platform="railway",
            outcome=Outcome.STARTED.value,
            channel_id="C0GENERAL",
            request_id=f"req-{ago.total_seconds()}",
        )
        session.add(row)
        await session.commit()
        await session.refresh(row)
        assert row.id is not None
        return row.id


async def outcome(bot: BotHarness, row_id: int) -> str:
    async with bot.deps.db.session() as session:
        found = (await session.exec(select(AuditLog).where(col(AuditLog.id) == row_id))).one()
        return found.outcome


async def test_a_restart_interrupted_is_marked_interrupted_at_start_with_a_line_in_its_channel(
    bot: BotHarness, clock: FakeClock, fake_slack: FakeSlack
) -> None:
    row = await started_row(bot, clock, ago=timedelta(seconds=5))

    closed = await ops_recovery.close_interrupted(bot.deps, at_start=True)

    if bot.deps.db.is_sqlite:  # one process: nobody else can be following it
        assert [r.id for r in closed] == [row] and await outcome(bot, row) == Outcome.INTERRUPTED
        (line,) = [m for m in fake_slack.messages("C0GENERAL") if "interrupted" in m.text]
        assert "*gateway*" in line.text and "<@U0LEAD>" in line.text and "/status gateway" in line.text
    else:  # another replica may be following a young one
        assert closed == [] and await outcome(bot, row) == Outcome.STARTED
    assert await ops_recovery.close_interrupted(bot.deps, at_start=True) == []  # closed once


async def test_the_sweep_closes_a_started_row_only_once_no_follow_can_still_be_running(
    bot: BotHarness, clock: FakeClock
) -> None:
    young = await started_row(bot, clock, ago=timedelta(minutes=14))
    old = await started_row(bot, clock, ago=timedelta(minutes=16))  # 10 m deploy timeout + 5 m of health checks

    closed = await ops_recovery.close_interrupted(bot.deps, at_start=False)

    assert [r.id for r in closed] == [old]
    assert (await outcome(bot, young), await outcome(bot, old)) == (Outcome.STARTED, Outcome.INTERRUPTED)


async def test_the_start_up_check_runs_by_itself(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> None:
    """Wired: a bot that starts closes what a dead one left `started` and resumes its setups."""
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as first:
        number = await stranded(first, clock)
        row = await started_row(first, clock, ago=timedelta(minutes=30))
        async with first.deps.db.session() as session:  # what a kill -9 left
            await session.exec(  # type: ignore[call-overload]
                update(Incident).where(col(Incident.id) == number).values(setup_claimed_at=clock.now())
            )
            await session.commit()
    clock.advance(setup_rows.SETUP_LEASE + timedelta(seconds=1))
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as second:
        assert second.deps.setup_sweep is not None and second.deps.ops_sweep is not None
        await second.deps.setup_sweep.ran.wait()
        await second.deps.ops_sweep.ran.wait()
        await second.settle()
        assert (await second.incident(number)).summary_ts is not None
        assert await outcome(second, row) == Outcome.INTERRUPTED


async def test_the_sweep_checks_at_start_then_again_and_outlives_a_failing_check() -> None:
    import asyncio

    from bot.incidents.recovery import Sweep

    calls: list[int] = []
    again = asyncio.Event()

    async def check() -> None:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the database is down")
        again.set()

    sweep = Sweep(check, every=timedelta(milliseconds=1), name="test sweep")
    await sweep.start()
    await asyncio.wait_for(again.wait(), 10)
    await sweep.stop()
    seen = len(calls)
    await asyncio.sleep(0.05)
    assert seen >= 2 and len(calls) == seen  # stopped means stopped
