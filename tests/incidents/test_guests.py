"""Slack guests through the real app: a guest sees only the incidents whose channel they are in.

Slack does not show a guest (multi- or single-channel) the public channels they are not in; the bot
must not show them those channels' incidents either. Full members still see every public incident,
also while Slack cannot say who is a guest.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.incidents.models import Incident
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

THEIRS = "Vendor API returns 500s"
OTHER = "Payroll batch stuck"
MISSING = "⚠️ There is no incident INC-99 that you can see. `/incident list` shows the open incidents."


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def bot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any], clock: FakeClock
) -> AsyncIterator[BotHarness]:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as harness:
        yield harness


@pytest.fixture(autouse=True)
def people(fake_slack: Any) -> None:
    fake_slack.add_user("U0VENDOR", "vendor", guest="multi")
    fake_slack.add_user("U0AUDITOR", "auditor", guest="single")
    fake_slack.channels["C0GENERAL"].members |= {"U0VENDOR", "U0AUDITOR"}  # the channel shared with them


async def two_incidents(bot: BotHarness, *, guest: str = "U0VENDOR") -> tuple[Incident, Incident]:
    theirs = await bot.declare(f"P2 {THEIRS}")
    other = await bot.declare(f"P1 {OTHER}")
    assert not theirs.private and not other.private and theirs.channel_id and other.channel_id
    bot.fake.channels[theirs.channel_id].members.add(guest)  # invited to this one channel only
    return theirs, other


async def answer(bot: BotHarness, text: str, *, user: str) -> tuple[str, str]:
    """The one reply's text, and all of it (blocks included) as JSON."""
    mark = len(bot.fake.responses)
    await bot.command(text, user=user, channel="C0GENERAL")
    got = bot.fake.responses[mark:]
    assert len(got) == 1, got
    return str(got[0].get("text") or ""), json.dumps(got[0])


def info_calls(bot: BotHarness, user: str) -> int:
    return len([c for c in bot.fake.calls_to("users.info") if c.args.get("user") == user])


@pytest.mark.parametrize("guest", ["U0VENDOR", "U0AUDITOR"])
async def test_a_guest_lists_only_the_incidents_whose_channel_they_are_in(bot: BotHarness, guest: str) -> None:
    await two_incidents(bot, guest=guest)
    text, shown = await answer(bot, "list", user=guest)
    assert text == "1 open incident"
    assert THEIRS in shown and OTHER not in shown


async def test_a_guest_asking_for_a_public_incident_not_theirs_is_answered_as_for_a_missing_one(
    bot: BotHarness,
) -> None:
    theirs, other = await two_incidents(bot)
    hidden = MISSING.replace("INC-99", other.ref)
    for subcommand in ("timeline", "note hello", "ack"):
        assert (await answer(bot, f"INC-99 {subcommand}", user="U0VENDOR"))[0] == MISSING, subcommand
        text, shown = await answer(bot, f"{other.ref} {subcommand}", user="U0VENDOR")
        assert text == hidden and OTHER not in shown, subcommand
    text, shown = await answer(bot, f"{theirs.ref} timeline", user="U0VENDOR")
    assert text == f"{theirs.ref} timeline" and THEIRS in shown
    after = await bot.incident(other.id or 0)
    assert after.acknowledged_by is None
    assert not [e for e in await bot.timeline(other.id or 0) if e.actor == "U0VENDOR"]


async def test_a_full_member_sees_every_public_incident_for_one_users_info_a_minute(bot: BotHarness) -> None:
    await two_incidents(bot)
    await bot.declare("P3 Search is slow")
    for _ in range(2):
        text, shown = await answer(bot, "list", user="U0BOB")
        assert text == "3 open incidents" and THEIRS in shown and OTHER in shown
    assert info_calls(bot, "U0BOB") == 1  # asked once, not per row nor per command


async def test_while_slack_cannot_say_who_is_a_guest_full_members_still_see_public_incidents(
    bot: BotHarness, clock: FakeClock
) -> None:
    await two_incidents(bot)
    assert (await answer(bot, "list", user="U0VENDOR"))[0] == "1 open incident"  # known to be a guest
    clock.advance(timedelta(seconds=61))
    bot.fake.fail("users.info", "internal_error", count=10)
    text, shown = await answer(bot, "list", user="U0BOB")
    assert text == "2 open incidents" and THEIRS in shown and OTHER in shown
    assert [c.response.get("error") for c in bot.fake.calls_to("users.info") if c.args.get("user") == "U0BOB"] == [
        "internal_error"
    ]  # Slack was asked, and failed
    assert (await answer(bot, "list", user="U0VENDOR"))[0] == "1 open incident"  # the last answer stands
    assert info_calls(bot, "U0VENDOR") == 2  # asked again after the minute, and failed


async def test_a_guests_stats_count_only_the_incidents_they_can_see_a_members_count_every_one(
    bot: BotHarness,
) -> None:
    theirs = await bot.declare(f"P2 {THEIRS} service:vendor")
    await bot.declare(f"P1 {OTHER} service:payroll")
    await bot.declare("private P3 Leaked signing key service:secrets")
    assert theirs.channel_id
    bot.fake.channels[theirs.channel_id].members.add("U0VENDOR")
    text, shown = await answer(bot, "stats", user="U0VENDOR")
    assert text.startswith("Stats of incidents declared in the last 30 days: 1. "), text
    assert "vendor" in shown and "payroll" not in shown and "P1" not in shown and "(private)" not in shown
    text, shown = await answer(bot, "stats", user="U0BOB")  # unchanged: private ones without their service
    assert text.startswith("Stats of incidents declared in the last 30 days: 3. "), text
    assert "vendor" in shown and "payroll" in shown and "(private)" in shown and "secrets" not in shown
