"""Retrying setup adopts the channel Slack already made for the incident, and only that channel.

The database can fail after Slack created an incident's channel and before the bot saved its ID.
The retry's conversations.create then gets `name_taken` (Slack says nothing more), so the bot looks
the name up and adopts the channel when it provably made it for this incident: its creator is the
bot, it is not archived, and it is not older than the incident. Anything else keeps a new name.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import SystemClock
from bot.incidents.ports import Channel
from bot.slack.adapters.incidents import SlackIncidentChat
from bot.timeline.models import Kind
from tests.fakes.slack_api import FakeSlack
from tests.fault.support import DatabaseOutage, OutageAfterChannel, unreachable_url
from tests.harness import BotHarness

NAME = "inc-1-checkout-is-down"


@pytest.fixture
async def outage(bot: BotHarness, database_url: str, tmp_path: Path) -> AsyncIterator[DatabaseOutage]:
    down = DatabaseOutage(bot.deps, unreachable_url(database_url, str(tmp_path)))
    yield down
    await down.close()


async def _declare_and_lose_the_database(bot: BotHarness, outage: DatabaseOutage) -> str:
    """/incident declare; the database fails as soon as Slack has made the channel. Returns its ID."""
    made_before = len(bot.fake.calls_to("conversations.create"))
    real = bot.deps.chat
    bot.deps.chat = OutageAfterChannel(real, outage)  # type: ignore[assignment]
    try:
        await bot.command("declare P1 Checkout is down")
    finally:
        outage.end()
        bot.deps.chat = real
    made = [c for c in bot.fake.calls_to("conversations.create")[made_before:] if c.response.get("ok")]
    assert len(made) == 1, [c.response for c in made]
    # The precondition: Slack has a channel the database does not know about.
    assert (await bot.incident(1)).channel_id is None
    return str(made[0].response["channel"]["id"])


async def _declare_retry_and_keep_off(bot: BotHarness, outage: DatabaseOutage) -> None:
    """Declare through the outage and retry: the incident gets `NAME-2`, and `NAME` (not its own) is left alone."""
    ours = await _declare_and_lose_the_database(bot, outage)
    assert bot.fake.channels[ours].name == f"{NAME}-2"
    await _retry_setup(bot)
    await _assert_set_up_in(bot, ours, f"{NAME}-2")
    assert _incident_channels(bot.fake) == [NAME, f"{NAME}-2"]
    _untouched(bot.fake, NAME)


async def _retry_setup(bot: BotHarness) -> None:
    """Press Retry setup right away: the interrupted run's lease is this process's own, taken over."""
    await bot.click("incident_retry_setup", "1", channel="C0GENERAL")


def _incident_channels(fake: FakeSlack) -> list[str]:
    return sorted(c.name for c in fake.channels.values() if c.name.startswith("inc-"))


async def _assert_set_up_in(bot: BotHarness, channel_id: str, name: str) -> None:
    incident = await bot.incident(1)
    assert (incident.channel_id, incident.channel_name) == (channel_id, name)
    assert incident.setup_error is None, incident.setup_error
    channel = bot.fake.channels[channel_id]
    assert channel.pins, "the summary was not pinned in the adopted channel"
    assert "U0ALICE" in channel.members
    notes = [e.text for e in await bot.timeline(1) if e.kind == Kind.SETUP]
    assert any(f"reused #{name}" in note for note in notes), notes


def _untouched(fake: FakeSlack, name: str) -> None:
    """The bot did not take over this channel: no messages, pins or topic from it."""
    channel = fake.channel_by_name(name)
    assert channel is not None
    assert [m for m in channel.messages if m.user == fake.bot_user_id] == []
    assert channel.pins == [] and channel.topic == ""


async def test_retry_adopts_the_channel_slack_made_before_the_database_failed(
    bot: BotHarness, outage: DatabaseOutage
) -> None:
    first = await _declare_and_lose_the_database(bot, outage)
    await _retry_setup(bot)
    await _assert_set_up_in(bot, first, NAME)
    assert _incident_channels(bot.fake) == [NAME], "orphaned channel(s)"
    # One channel was made; the retry's conversations.create only found the name taken.
    assert [c.response.get("error") for c in bot.fake.calls_to("conversations.create")] == [None, "name_taken"]


async def test_a_channel_someone_else_made_with_the_name_is_not_adopted(
    bot: BotHarness, outage: DatabaseOutage
) -> None:
    # A person made the incident's would-be channel name beforehand, and invited the bot.
    bot.fake.add_channel(NAME, creator="U0ALICE", members=["U0ALICE", bot.fake.bot_user_id])
    await _declare_retry_and_keep_off(bot, outage)


async def test_the_declaration_itself_never_looks_for_a_channel_to_adopt(bot: BotHarness) -> None:
    """Only a retry can meet a channel of its own; a name a person took costs no crawl at declare."""
    bot.fake.add_channel(NAME, creator="U0ALICE", members=["U0ALICE"])
    incident = await bot.declare("P1 Checkout is down")
    assert incident.channel_name == f"{NAME}-2"
    assert bot.fake.calls_to("conversations.list") == []


@pytest.mark.parametrize(
    "seed",
    [
        pytest.param({"archived": True}, id="archived"),
        pytest.param({"created": int(time.time()) - 3600}, id="made-before-the-incident"),
    ],
)
async def test_an_archived_or_older_channel_of_the_bot_is_not_adopted(
    bot: BotHarness, outage: DatabaseOutage, seed: dict[str, Any]
) -> None:
    # The bot itself made a channel with this name: archived, or before this incident existed
    # (say the database was restored from a backup and the incident numbers started over).
    bot.fake.add_channel(NAME, creator=bot.fake.bot_user_id, members=[bot.fake.bot_user_id], **seed)
    await _declare_retry_and_keep_off(bot, outage)


async def test_the_channel_is_found_on_a_later_page_and_the_walk_stops_there(
    bot: BotHarness, outage: DatabaseOutage
) -> None:
    for i in range(250):
        bot.fake.add_channel(f"team-{i:03d}")
    first = await _declare_and_lose_the_database(bot, outage)
    for i in range(300):  # more pages after it, which the bot must not need to read
        bot.fake.add_channel(f"later-{i:03d}")
    listed_before = len(bot.fake.calls_to("conversations.list"))
    await _retry_setup(bot)
    await _assert_set_up_in(bot, first, NAME)
    pages = bot.fake.calls_to("conversations.list")[listed_before:]
    assert len(pages) == 2, [c.args for c in pages]
    assert all(p.args["limit"] == 200 and p.args["exclude_archived"] is True for p in pages)
    assert all(set(str(p.args["types"]).split(",")) == {"public_channel", "private_channel"} for p in pages)
    assert "cursor" not in pages[0].args
    assert pages[1].args["cursor"] == pages[0].response["response_metadata"]["next_cursor"]
    assert NAME in [c["name"] for c in pages[1].response["channels"]]


@pytest.mark.parametrize(
    "bot_config",
    [{"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS", "private_incidents": True}}],
)
async def test_a_private_incident_channel_is_adopted_too(bot: BotHarness, outage: DatabaseOutage) -> None:
    first = await _declare_and_lose_the_database(bot, outage)
    assert bot.fake.channels[first].is_private
    await _retry_setup(bot)
    await _assert_set_up_in(bot, first, NAME)
    assert _incident_channels(bot.fake) == [NAME]


async def test_a_failed_lookup_falls_back_to_a_new_name(
    bot: BotHarness, outage: DatabaseOutage, caplog: pytest.LogCaptureFixture
) -> None:
    first = await _declare_and_lose_the_database(bot, outage)
    bot.fake.fail("conversations.list", "missing_scope")
    with caplog.at_level(logging.WARNING, logger="bot.incidents.flows"):
        await _retry_setup(bot)
    incident = await bot.incident(1)
    # Setup still finishes (as before adoption existed), and the reason the first channel was left is logged.
    assert incident.channel_name == f"{NAME}-2" and incident.channel_id != first
    assert incident.setup_error is None, incident.setup_error
    assert any(f"#{NAME}" in r.getMessage() and "missing_scope" in r.getMessage() for r in caplog.records)


async def test_the_adapter_allows_a_few_seconds_of_clock_skew_and_wants_membership(fake_slack: FakeSlack) -> None:
    chat = SlackIncidentChat(AsyncWebClient(token=fake_slack.bot_token, base_url=fake_slack.url), clock=SystemClock())
    declared_at = datetime.now(UTC).replace(microsecond=0)
    stamp = int(declared_at.timestamp())
    bot_user = fake_slack.bot_user_id
    fake_slack.add_channel("inc-7-a", creator=bot_user, members=[bot_user], created=stamp - 3)
    fake_slack.add_channel("inc-7-b", creator=bot_user, members=[bot_user], created=stamp - 120)
    fake_slack.add_channel("inc-7-c", creator=bot_user, members=["U0ALICE"], created=stamp)  # bot was removed
    adopted = await chat.find_own_channel(name="inc-7-a", created_after=declared_at)
    assert adopted == Channel(id=fake_slack.channel_by_name("inc-7-a").id, name="inc-7-a")  # type: ignore[union-attr]
    assert await chat.find_own_channel(name="inc-7-b", created_after=declared_at) is None
    assert await chat.find_own_channel(name="inc-7-c", created_after=declared_at) is None
    assert await chat.find_own_channel(name="inc-7-nowhere", created_after=declared_at) is None
    # The bot's user ID comes from one auth.test, however often it looks.
    assert len(fake_slack.calls_to("auth.test")) == 1


@pytest.mark.parametrize(
    "bot_config",
    [{"channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS", "private_incidents": True}}],
)
async def test_a_private_incident_s_channel_name_stays_out_of_the_logs(
    bot: BotHarness, outage: DatabaseOutage, caplog: pytest.LogCaptureFixture
) -> None:
    """Its name is made from the title: the lookups and the adoption log the channel's id instead."""
    bot.fake.add_channel(NAME, creator="U0ALICE", members=["U0ALICE", bot.fake.bot_user_id])
    caplog.set_level(logging.INFO)
    ours = await _declare_and_lose_the_database(bot, outage)
    await _retry_setup(bot)  # NAME is looked up and refused (someone else's), NAME-2 is adopted
    await _assert_set_up_in(bot, ours, f"{NAME}-2")
    said = [r.getMessage() + (r.exc_text or "") for r in caplog.records]
    assert any(ours in line and "adopting" in line for line in said), said
    assert [line for line in said if "checkout-is-down" in line] == []
