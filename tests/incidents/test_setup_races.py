"""The channel setup runs for seconds (minutes when Slack throttles conversations.create), and the
incident lives on meanwhile: pages go out first, and people ack or change it. The setup's own
writes must not put back what they changed."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import FakeClock
from bot.config import Severity
from bot.db import Database
from bot.exceptions import InvalidState
from bot.incidents import flows as incident_flows
from bot.incidents import service, setup_rows, setup_steps
from bot.incidents.models import Incident, IncidentCreate, Role, Status
from bot.slack.adapters.escalation import PAGE_ACK
from bot.timeline import service as timeline
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot, until


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {"escalation": {"stop_on": "ack", "levels": [{"name": "On-call", "after": "0m", "notify": ["U0BOB"]}]}}


async def written(bot: BotHarness, predicate: Callable[[Incident], bool], within: float = 5.0) -> None:
    """Until INC-1 in the database satisfies `predicate` (a command's work runs after its ack)."""
    deadline = asyncio.get_running_loop().time() + within
    while not predicate(await bot.incident(1)):
        assert asyncio.get_running_loop().time() < deadline, "not written in time"
        await asyncio.sleep(0.01)


def first_post_in_a_new_channel() -> Callable[[dict[str, Any]], bool]:
    """Matches the setup's first post in the new channel (the summary), and only that one."""
    held: list[str] = []

    def the_summary(args: dict[str, Any]) -> bool:
        channel = str(args.get("channel", ""))
        if held or not channel.startswith("C") or channel in ("C0INCIDENTS", "C0GENERAL", "C0ALERTS"):
            return False
        held.append(channel)
        return True

    return the_summary


def ack_button(bot: BotHarness) -> tuple[str, str, str, str]:
    """(action_id, value, channel, ts) of the Acknowledge button in U0BOB's page DM."""
    for message in bot.fake.dms("U0BOB"):
        for block in message.blocks or []:
            for element in block.get("elements", []) if block.get("type") == "actions" else []:
                if element["action_id"] == PAGE_ACK:
                    return element["action_id"], element["value"], message.channel, message.ts
    raise AssertionError("no page DM with an Acknowledge button")


async def test_an_ack_made_while_the_channel_is_being_created_stands(bot: BotHarness) -> None:
    gate = bot.fake.hold("conversations.create")
    try:
        await bot.command("declare P1 Checkout is down", settle=False)
        await until(lambda: bot.fake.held and bot.fake.dms("U0BOB"))  # paged; the channel still to come
        action, value, channel, ts = ack_button(bot)
        await bot.click(action, value, user="U0BOB", channel=channel, message_ts=ts, settle=False)
        await written(bot, lambda incident: incident.acknowledged_by == "U0BOB")
    finally:
        gate.set()
    await bot.settle()
    incident = await bot.incident(1)
    assert incident.channel_id is not None and incident.summary_ts is not None
    assert incident.acknowledged_by == "U0BOB" and incident.acknowledged_at is not None


@pytest.mark.parametrize(
    ("command", "made"),
    [
        ("severity P1", lambda incident: incident.severity == "P1"),
        ("role commander <@U0BOB>", lambda incident: incident.commander == "U0BOB"),
        ("resolve Restarted the gateway", lambda incident: incident.status == "resolved" and incident.resolved_at),
    ],
    ids=["severity", "commander", "resolve"],
)
async def test_a_change_made_during_the_setup_stands(
    bot: BotHarness, command: str, made: Callable[[Incident], bool]
) -> None:
    gate = bot.fake.hold("chat.postMessage", first_post_in_a_new_channel())
    try:
        await bot.command("declare P2 Checkout is slow", settle=False)
        await until(lambda: bot.fake.held)  # the channel exists; the summary is on its way
        incident = await bot.incident(1)
        assert incident.channel_id is not None
        await bot.command(command, channel=incident.channel_id, settle=False)
        await written(bot, made)
    finally:
        gate.set()
    await bot.settle()
    incident = await bot.incident(1)
    assert made(incident), incident
    assert incident.summary_ts is not None and incident.announcement_ts is not None  # and the setup finished


# --- a change read before a resolve and written after it ----------------------------------


async def _resolved_meanwhile(db: Database, change: Callable[[AsyncSession, Incident], Awaitable[object]]) -> Incident:
    """Read INC-1, let a resolve commit from another session, then make `change` with what was read."""
    now = datetime.now(UTC)
    async with db.session() as session:
        created = await service.create(
            session, data=IncidentCreate(title="Checkout is down", severity=Severity.P2, declared_by="U0ALICE"), now=now
        )
    assert created.id is not None
    async with db.session() as session:
        stale = await service.get(session, number=created.id)
        async with db.session() as other:
            await service.resolve(
                other, incident=await service.get(other, number=created.id), summary="fixed", actor="U0BOB", now=now
            )
        with pytest.raises(InvalidState, match="resolved"):
            await change(session, stale)
    async with db.session() as session:
        return await service.get(session, number=created.id)


@pytest.mark.parametrize(
    "change",
    [
        lambda s, i: service.set_status(
            s, incident=i, status=Status.MONITORING, message="m", actor="U0C", now=i.declared_at
        ),
        lambda s, i: service.set_severity(s, incident=i, severity=Severity.P1, actor="U0C", now=i.declared_at),
        lambda s, i: service.assign_role(
            s, incident=i, role=Role.COMMANDER, user="U0C", actor="U0C", now=i.declared_at
        ),
        lambda s, i: service.acknowledge(s, incident=i, actor="U0C", now=i.declared_at),
    ],
    ids=["status", "severity", "role", "ack"],
)
async def test_a_change_read_before_a_resolve_is_refused_after_it(
    db: Database, change: Callable[[AsyncSession, Incident], Awaitable[object]]
) -> None:
    """`/incident update monitoring` racing a Resolve click reopened the incident (status back to
    monitoring, resolved_at still set): reminders stopped, and it showed as open again."""
    incident = await _resolved_meanwhile(db, change)
    assert (incident.status, incident.resolved_by) == (Status.RESOLVED, "U0BOB")
    assert (incident.severity, incident.commander, incident.acknowledged_at) == (Severity.P2, "U0ALICE", None)
    async with db.session() as session:
        kinds = [e.kind for e in await timeline.events(session, incident_id=incident.id or 0)]
    assert kinds == ["declared", "resolved"]  # nothing recorded for the refused change


# --- the setup's lease ----------------------------------------------------------------------


class Beats:
    """The setup lease's renewal beats, given by the test instead of by the event loop's timers."""

    def __init__(self) -> None:
        self.waiting = 0
        self._go = asyncio.Event()

    async def __call__(self, seconds: float) -> None:
        self.waiting += 1
        await self._go.wait()
        self._go = asyncio.Event()

    def tick(self) -> None:
        self._go.set()


async def test_a_setup_that_outlasts_its_lease_keeps_it_and_a_second_run_is_refused(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack throttles conversations.create for minutes in a storm; the lease is 2 minutes.

    The clock is injected and the renewals are driven by the test, so a busy machine (the renewal
    starved past a 0.3 s lease, as this test once did) cannot change the outcome.
    """
    clock = FakeClock()
    beats = Beats()
    monkeypatch.setattr(setup_steps.SetupLease, "beat", staticmethod(beats))
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={})
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        gate = bot.fake.hold("conversations.create")
        try:
            await bot.command("declare P1 Checkout is down", settle=False)
            await until(lambda: bot.fake.held and beats.waiting == 1)
            claimed = (await bot.incident(1)).setup_claimed_at
            assert claimed is not None
            for beat in range(1, 4):  # three lease lengths of Slack holding the channel back
                clock.advance(setup_rows.SETUP_LEASE / 2)
                beats.tick()
                await until(functools.partial(lambda b: beats.waiting == b + 1, beat))  # renewed, waiting for the next
                await written(bot, lambda incident: incident.setup_claimed_at == clock.now())
            assert clock.now() - claimed > 1.4 * setup_rows.SETUP_LEASE
            with pytest.raises(InvalidState, match="already running"):
                await incident_flows.finish_setup(bot.deps, incident_id=1, actor="U0BOB")  # Retry, an alert's sync
        finally:
            gate.set()
        await bot.settle()
        incident = await bot.incident(1)
        assert incident.summary_ts is not None and incident.setup_claimed_at is None  # done, and given back
        assert len(bot.fake.calls_to("conversations.create")) == 1
        assert len(bot.fake.calls_to("pins.add")) == 1


async def test_without_its_renewals_the_lease_expires_and_is_taken_over(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other side of the test above: the renewals are what keeps the lease (this one's never come)."""
    clock = FakeClock()
    beats = Beats()
    monkeypatch.setattr(setup_steps.SetupLease, "beat", staticmethod(beats))
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={})
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        gate = bot.fake.hold("conversations.create")
        try:
            await bot.command("declare P1 Checkout is down", settle=False)
            await until(lambda: bot.fake.held and beats.waiting == 1)
            clock.advance(setup_rows.SETUP_LEASE + timedelta(seconds=1))
            async with bot.deps.db.session() as session:
                assert await setup_rows.claim_setup(session, incident_id=1, now=clock.now())  # taken over
        finally:
            gate.set()
            beats.tick()
        await bot.settle()


async def lease_taken_over(db: Database) -> tuple[int, datetime, datetime]:
    """An incident whose setup lease, taken at `start`, expired and was taken over at `later`."""
    start = datetime.now(UTC)
    async with db.session() as session:
        created = await service.create(
            session, data=IncidentCreate(title="x", severity=Severity.P2, declared_by="U0ALICE"), now=start
        )
    number = created.id or 0
    later = start + setup_rows.SETUP_LEASE + timedelta(seconds=1)
    async with db.session() as session:
        assert await setup_rows.claim_setup(session, incident_id=number, now=start)
        assert await setup_rows.claim_setup(session, incident_id=number, now=later)  # the first one's expired
    return number, start, later


async def test_a_run_that_lost_its_lease_does_not_free_the_one_that_took_it(db: Database) -> None:
    number, start, later = await lease_taken_over(db)
    async with db.session() as session:
        assert not await setup_rows.renew_setup(session, incident_id=number, held=start, now=later)
        await setup_rows.release_setup(session, incident_id=number, held=start)  # the first run ends
        assert not await setup_rows.claim_setup(session, incident_id=number, now=later)  # still held
        await setup_rows.release_setup(session, incident_id=number, held=later)
        assert await setup_rows.claim_setup(session, incident_id=number, now=later)


async def test_the_setups_last_record_frees_its_own_lease_only(db: Database) -> None:
    """The last step's record and the lease's release are one UPDATE; a run that lost its lease writes its
    record but leaves the lease of the run that took it over."""
    number, start, later = await lease_taken_over(db)
    async with db.session() as session:
        values: dict[str, str | None] = {"announcement_ts": "1.2", "announcement_channel": "C0INCIDENTS"}
        stale = await setup_rows.record_setup(session, incident_id=number, now=later, values=values, release=start)
        assert stale.announcement_ts == "1.2" and stale.setup_claimed_at == later  # written; the lease not ours
        done = await setup_rows.record_setup(session, incident_id=number, now=later, values={}, release=later)
        assert done.setup_claimed_at is None and done.announcement_ts == "1.2"
        assert await setup_rows.claim_setup(session, incident_id=number, now=later)


async def test_the_channels_messages_show_a_change_made_during_the_setup(bot: BotHarness) -> None:
    """The setup posts what it read at its start; a change the flows could not show yet (no summary,
    no announcement recorded) is shown once the setup is done."""
    gate = bot.fake.hold("chat.postMessage", first_post_in_a_new_channel())
    try:
        await bot.command("declare P3 Checkout is slow", settle=False)
        await until(lambda: bot.fake.held)  # the topic is set, the summary is on its way
        incident = await bot.incident(1)
        await bot.command("severity P1", channel=incident.channel_id or "", settle=False)
        await written(bot, lambda incident: incident.severity == "P1")
    finally:
        gate.set()
    await bot.settle()
    incident = await bot.incident(1)
    assert incident.channel_id and incident.summary_ts and incident.announcement_ts
    channel = bot.fake.channels[incident.channel_id]
    assert "P1" in channel.topic, channel.topic
    summary = channel.find(incident.summary_ts)
    assert summary is not None
    assert "P1" in summary.text and "P3" not in summary.text, summary.text
    announcement = bot.fake.channels["C0INCIDENTS"].find(incident.announcement_ts)
    assert announcement is not None
    assert "P1" in announcement.text and "P3" not in announcement.text, announcement.text
