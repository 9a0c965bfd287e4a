"""`/incident started HH:MM` in the typist's time zone, as Slack has it (users.info `tz`, else `tz_offset`),
UTC when Slack gives none or the time says `UTC`/`Z`; the answer says how the time was read. Through the
real app, on the post-mortem tests' clock (2026-11-20 09:00 UTC, 10:00 in Berlin)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from bot.clock import FakeClock
from bot.incidents import grammar
from tests.harness import BotHarness
from tests.postmortem.seed import T0

BERLIN = "Europe/Berlin"


async def _started(bot: BotHarness, text: str, *, tz: str, tz_offset: int | None = None) -> tuple[datetime, str]:
    """Bob, whose Slack time zone is `tz`, types `/incident started <text>` in INC-1's channel."""
    bot.fake.add_user("U0BOB", "bob")
    bot.fake.users["U0BOB"].tz = tz
    bot.fake.users["U0BOB"].tz_offset = tz_offset
    incident = await bot.incident(1)
    await bot.command(f"started {text}", channel=incident.channel_id or "", user="U0BOB")
    at = (await bot.incident(1)).impact_started_at
    assert at is not None, bot.last_reply()
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at, bot.last_reply()


@pytest.fixture
async def declared(bot: BotHarness, clock: FakeClock) -> None:
    await bot.declare("P1 Checkout is down")
    clock.advance(timedelta(minutes=3))  # 09:03 UTC, 10:03 in Berlin


@pytest.mark.usefixtures("declared")
async def test_a_time_of_day_is_read_in_the_typists_zone(bot: BotHarness) -> None:
    """An engineer in Berlin typing 09:40 means 08:40 UTC; it was read as 09:40 UTC, still to come, so yesterday's."""
    at, reply = await _started(bot, "09:40", tz=BERLIN)
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "time to detect 20m 00s" in reply
    assert "`09:40` was read in Europe/Berlin time (your Slack time zone; add `UTC` for UTC), as today's" in reply


@pytest.mark.usefixtures("declared")
async def test_a_time_still_to_come_today_in_the_typists_zone_is_yesterdays(bot: BotHarness) -> None:
    at, reply = await _started(bot, "10:30", tz=BERLIN)  # 09:30 UTC: still to come in UTC too
    assert at == datetime(2026, 11, 19, 9, 30, tzinfo=UTC)
    assert "`10:30` was read in Europe/Berlin time" in reply and "as yesterday's: the last 10:30 before now." in reply


@pytest.mark.usefixtures("declared")
@pytest.mark.parametrize(("text", "tz"), [("10:08", BERLIN), ("09:18 UTC", BERLIN), ("09:03:30", "")])
async def test_a_time_a_few_minutes_ahead_is_now_not_yesterdays(bot: BotHarness, text: str, tz: str) -> None:
    """The typist's watch runs ahead of the server's: 10:08 in Berlin typed at 10:03 there means about now,
    not yesterday's (a time to detect of a day). Read as now, and said so."""
    at, reply = await _started(bot, text, tz=tz)
    assert at == datetime(2026, 11, 20, 9, 3, tzinfo=UTC), reply
    assert "time to detect 0s" in reply
    assert "ahead of the bot's clock" in reply and "so the impact start is now" in reply
    assert "yesterday" not in reply


@pytest.mark.usefixtures("declared")
async def test_a_time_more_than_a_quarter_hour_ahead_is_still_yesterdays(bot: BotHarness) -> None:
    at, reply = await _started(bot, "10:19", tz=BERLIN)  # 16 minutes to come
    assert at == datetime(2026, 11, 19, 9, 19, tzinfo=UTC)
    assert "as yesterday's: the last 10:19 before now." in reply and "ahead" not in reply


@pytest.mark.usefixtures("declared")
@pytest.mark.parametrize(
    ("text", "tz", "shown"),
    [
        ("2026-11-20 10:08", BERLIN, "`2026-11-20 10:08` was read in Europe/Berlin time"),
        ("2026-11-20T10:08:30", BERLIN, "`2026-11-20 10:08` was read in Europe/Berlin time"),
        ("2026-11-20 09:18", "", "`2026-11-20 09:18` was read in UTC (Slack gave no time zone for you)"),
        ("2026-11-20 09:08 UTC", BERLIN, "`2026-11-20 09:08 UTC`"),
        ("2026-11-20T09:08Z", BERLIN, "`2026-11-20 09:08 UTC`"),
        ("2026-11-20T10:08+01:00", "", "`2026-11-20 09:08 UTC`"),
    ],
)
async def test_a_date_and_time_a_few_minutes_ahead_is_now_not_refused(
    bot: BotHarness, text: str, tz: str, shown: str
) -> None:
    """The same watch, with the date typed too: once refused as in the future, now read as now like a
    time of day, in every form the grammar takes, and said so."""
    at, reply = await _started(bot, text, tz=tz)
    assert at == datetime(2026, 11, 20, 9, 3, tzinfo=UTC), reply
    assert "time to detect 0s" in reply and "future" not in reply
    assert shown in reply and "ahead of the bot's clock" in reply and "so the impact start is now" in reply


@pytest.mark.usefixtures("declared")
@pytest.mark.parametrize("text", ["2026-11-20 10:19", "2026-11-20T09:19Z", "2026-11-21 10:05"])
async def test_a_date_and_time_more_than_a_quarter_hour_ahead_is_refused(bot: BotHarness, text: str) -> None:
    bot.fake.add_user("U0BOB", "bob")
    bot.fake.users["U0BOB"].tz = BERLIN
    incident = await bot.incident(1)
    await bot.command(f"started {text}", channel=incident.channel_id or "", user="U0BOB")
    assert "is in the future" in bot.last_reply()
    assert (await bot.incident(1)).impact_started_at == incident.impact_started_at


@pytest.mark.usefixtures("declared")
@pytest.mark.parametrize("text", ["08:40 UTC", "08:40Z", "08:40 utc"])
async def test_utc_or_z_reads_it_in_utc(bot: BotHarness, text: str) -> None:
    at, reply = await _started(bot, text, tz=BERLIN)
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "`08:40` was read in UTC, as today's" in reply


@pytest.mark.usefixtures("declared")
async def test_without_a_zone_from_slack_it_is_utc_and_said_so(bot: BotHarness) -> None:
    at, reply = await _started(bot, "08:40", tz="")
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "`08:40` was read in UTC (Slack gave no time zone for you), as today's" in reply


@pytest.mark.usefixtures("declared")
async def test_when_slack_cannot_be_asked_it_is_utc_and_said_why(bot: BotHarness) -> None:
    """users.info fails: Bob counts as a full member (no zone), and the answer does not claim Slack gave none."""
    bot.fake.server_error("users.info", count=10)
    at, reply = await _started(bot, "08:40", tz=BERLIN)
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "`08:40` was read in UTC (Slack could not be asked for your time zone just now;" in reply, reply
    assert "add `UTC` to say so" in reply and "gave no time zone" not in reply


@pytest.mark.usefixtures("declared")
async def test_a_zone_the_server_does_not_know_is_read_from_its_offset(bot: BotHarness) -> None:
    at, reply = await _started(bot, "14:10", tz="Asia/Nowhere", tz_offset=5 * 3600 + 1800)
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "`14:10` was read in UTC+05:30 time" in reply


@pytest.mark.usefixtures("declared")
async def test_a_date_and_time_without_a_zone_is_the_typists_too(bot: BotHarness) -> None:
    at, reply = await _started(bot, "2026-11-20 09:40", tz=BERLIN)
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "`2026-11-20 09:40` was read in Europe/Berlin time" in reply
    at, reply = await _started(bot, "2026-11-20T08:45Z", tz=BERLIN)
    assert at == datetime(2026, 11, 20, 8, 45, tzinfo=UTC) and "was read in" not in reply


async def test_on_a_resolved_incident_it_is_the_last_such_time_before_the_resolve(
    bot: BotHarness, clock: FakeClock
) -> None:
    incident = await bot.declare("P1 Checkout is down")
    clock.advance(timedelta(minutes=30))
    await bot.command("resolve fixed", channel=incident.channel_id or "")
    clock.advance(timedelta(hours=20))  # the next morning, writing the post-mortem
    at, reply = await _started(bot, "09:40", tz=BERLIN)
    assert at == datetime(2026, 11, 20, 8, 40, tzinfo=UTC)
    assert "on the day it was resolved: the last 09:40 before the resolve." in reply
    at, reply = await _started(bot, "10:35", tz=BERLIN)  # 5 minutes after the resolve: not now, the day before
    assert at == datetime(2026, 11, 19, 9, 35, tzinfo=UTC)
    assert "on the day before it was resolved" in reply and "ahead" not in reply


@pytest.mark.parametrize(
    ("text", "now", "expected"),
    [
        # Summer time: Berlin is UTC+2 in July, UTC+1 in November.
        ("started 13:05", datetime(2026, 7, 1, 12, 0, tzinfo=UTC), datetime(2026, 7, 1, 11, 5, tzinfo=UTC)),
        ("started 13:05", T0, datetime(2026, 11, 19, 12, 5, tzinfo=UTC)),
        # Just after midnight in Berlin, still the day before in UTC: 23:50 is Berlin's yesterday.
        ("started 23:50", datetime(2026, 11, 19, 23, 10, tzinfo=UTC), datetime(2026, 11, 19, 22, 50, tzinfo=UTC)),
        ("started 00:05", datetime(2026, 11, 19, 23, 10, tzinfo=UTC), datetime(2026, 11, 19, 23, 5, tzinfo=UTC)),
        ("started 00:05 UTC", datetime(2026, 11, 19, 23, 10, tzinfo=UTC), datetime(2026, 11, 19, 0, 5, tzinfo=UTC)),
        # A few minutes ahead is now, across midnight too (tomorrow's 00:05, not today's of a day ago).
        ("started 00:05 UTC", datetime(2026, 11, 19, 23, 55, tzinfo=UTC), datetime(2026, 11, 19, 23, 55, tzinfo=UTC)),
        ("started 01:05", datetime(2026, 11, 19, 23, 55, tzinfo=UTC), datetime(2026, 11, 19, 23, 55, tzinfo=UTC)),
        ("started 01:15", datetime(2026, 11, 19, 23, 55, tzinfo=UTC), datetime(2026, 11, 19, 0, 15, tzinfo=UTC)),
    ],
)
def test_started_grammar_in_a_zone(text: str, now: datetime, expected: datetime) -> None:
    command: Any = grammar.parse(text)
    assert command.resolve(now, zone=ZoneInfo(BERLIN)) == expected
