"""Impact start and time to detect: from the first alert, corrected with `/incident started`, in the
post-mortem and in `/incident stats`, through the real app on a clock the tests move."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.exceptions import UsageError
from bot.incidents import grammar
from bot.postmortem import service as postmortem
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, send
from tests.harness import BotHarness, slack_date
from tests.postmortem.seed import T0


def latest_postmortem(bot: BotHarness) -> str:
    files = [f for f in bot.fake.files.values() if f.completed]
    assert files, "no post-mortem was uploaded"
    return (files[-1].content or b"").decode()


async def test_started_corrects_the_impact_start_and_the_postmortem_shows_time_to_detect(
    bot: BotHarness, clock: FakeClock
) -> None:
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    assert incident.impact_started_at is None and incident.impact_start == T0  # declared by hand
    clock.advance(timedelta(minutes=3))
    await bot.command("started -25m", channel=channel, user="U0BOB")
    assert "time to detect 22m 00s" in bot.last_reply()  # 25 minutes before now, 22 before the declaration
    incident = await bot.incident(incident.id or 0)
    assert incident.impact_started_at == T0 - timedelta(minutes=22)
    [event] = [e for e in await bot.timeline(incident.id or 0) if e.kind == "impact"]
    assert event.key and event.actor == "U0BOB" and "08:38:00" in event.text
    notices = [m.text for m in bot.fake.messages(channel) if m.ephemeral_to is None]
    assert any("corrected the impact start" in text for text in notices)
    await bot.command("postmortem", channel=channel)
    # The summary counts from the declaration ("declared at …; still open after …"), the impact table from the impact.
    assert "declared by @alice at 2026-11-20 09:00:00 UTC; it is still open after 3m 00s." in latest_postmortem(bot)

    clock.advance(timedelta(minutes=30))
    await bot.command("resolve rolled back", channel=channel)
    # Slack says where each count starts: the resolve from the declaration, the impact from its start.
    notices = [m.text for m in bot.fake.messages(channel) if m.ephemeral_to is None]
    assert any("resolved INC-1 33m 00s after declaration (impact 55m 00s)\n" in t for t in notices), notices
    summary = next(m for m in bot.fake.messages(channel) if m.ts == incident.summary_ts)
    assert "*Resolved*\\n" in str(summary.blocks) and ", 33m 00s after declaration (impact 55m 00s)" in str(
        summary.blocks
    )
    text = latest_postmortem(bot)
    assert "at 2026-11-20 09:00:00 UTC and resolved by @alice 33m 00s later." in text
    assert "| Start | 2026-11-20 08:38:00 UTC (set by @" in text
    assert "| Duration | 55m 00s |" in text  # from the impact start, not the declaration
    assert "| Impact started | 2026-11-20 08:38:00 | -22m 00s | @" in text
    assert "- Time to detect (impact start to declaration): 22m 00s\n" in text

    await bot.command("stats", channel="C0GENERAL")
    assert "Time to detect: mean *22m 00s*, median *22m 00s* (1 with an impact start" in bot.last_reply()


@pytest.mark.parametrize("bot_config", [AUTO])
async def test_an_alert_declared_incident_starts_at_its_first_alert(bot: BotHarness, clock: FakeClock) -> None:
    early = p.am_alert(severity="critical", instance="api-1:9090", starts_at="2026-11-20T08:51:00Z")
    later = p.am_alert(severity="critical", instance="api-2:9090", starts_at="2026-11-20T08:57:00Z")
    response = await send(bot, p.alertmanager([later, early]))
    assert response.status_code == 200
    incident = await bot.incident(1)
    assert incident.impact_started_at == datetime(2026, 11, 20, 8, 51, tzinfo=UTC)
    assert incident.time_to_detect == timedelta(minutes=9)
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve fixed", channel=incident.channel_id or "")
    text = latest_postmortem(bot)
    assert "| Start | 2026-11-20 08:51:00 UTC (first alert) |" in text
    assert "- Time to detect (impact start to declaration): 9m 00s\n" in text
    assert "| Impact started | 2026-11-20 08:51:00 | -9m 00s | first alert |" in text
    [message] = [m for m in bot.fake.messages(incident.channel_id or "") if m.files]
    assert (
        "impact 19m 00s from the first alert · time to detect 9m 00s · "
        "after declaration: not acknowledged, mitigated 10m 00s, resolved 10m 00s\n"
    ) in message.text


async def test_started_refuses_the_future_and_nonsense(bot: BotHarness, clock: FakeClock) -> None:
    incident = await bot.declare("P2 Slow search")
    channel = incident.channel_id or ""
    await bot.command("started 2026-11-20T09:30Z", channel=channel)
    assert "in the future" in bot.last_reply()
    await bot.command("started yesterday-ish", channel=channel)
    assert "is not a time" in bot.last_reply() and "/incident started" in bot.last_reply()
    assert (await bot.incident(incident.id or 0)).impact_started_at is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("started -15m", datetime(2026, 11, 20, 8, 45, tzinfo=UTC)),
        ("started 1h 30m ago", datetime(2026, 11, 20, 7, 30, tzinfo=UTC)),
        ("started 08:05", datetime(2026, 11, 20, 8, 5, tzinfo=UTC)),
        ("started 23:50", datetime(2026, 11, 19, 23, 50, tzinfo=UTC)),  # later than now today: yesterday
        ("started 2026-11-19T22:10:00+01:00", datetime(2026, 11, 19, 21, 10, tzinfo=UTC)),
        ("INC-4 started 2026-11-20 08:00", datetime(2026, 11, 20, 8, 0, tzinfo=UTC)),
    ],
)
def test_started_grammar(text: str, expected: datetime) -> None:
    command: Any = grammar.parse(text)
    assert isinstance(command, grammar.Started)
    assert command.resolve(T0) == expected


@pytest.mark.parametrize("text", ["started", "started soon", "started -45d", "started 24:10"])
def test_started_grammar_says_what_to_type(text: str) -> None:
    with pytest.raises(UsageError) as caught:
        grammar.parse(text)
    assert caught.value.usage.startswith("/incident started")


async def test_an_impact_start_after_the_declaration_is_no_negative_time_to_detect(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Declared ahead of the impact (a risky change watched from the start): nothing was late to detect, and
    the post-mortem says so as `/incident started` and `/incident stats` do, not "-10m 00s"."""
    incident = await bot.declare("P2 Watching the billing migration")
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=20))
    await bot.command("started 09:10", channel=channel, user="U0BOB")
    assert "time to detect 0s" in bot.last_reply()
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve rolled back", channel=channel)
    text = latest_postmortem(bot)
    assert "- Time to detect (impact start to declaration): 0s\n" in text
    assert "| Declared | 2026-11-20 09:00:00 UTC, 10m 00s before the impact started |" in text
    assert "| Impact started | 2026-11-20 09:10:00 | 10m 00s | @" in text
    [message] = [m for m in bot.fake.messages(channel) if m.files]
    assert "time to detect 0s · " in message.text
    async with bot.deps.db.session() as session:
        html = postmortem.render(await postmortem.build(session, incident_id=incident.id or 0), fmt="html")
    assert "<li>Time to detect (impact start to declaration): 0s</li>" in html
    assert "2026-11-20 09:00:00 UTC, 10m 00s before the impact started</td>" in html


@pytest.mark.parametrize("text", ["0001-01-01T00:00+01:00", "9999-12-31T23:59-01:00"])
async def test_started_at_a_date_out_of_range_says_what_to_type(bot: BotHarness, text: str) -> None:
    """A zone that pushes the date past year 1 or 9999 is a typo like any other, not an internal error."""
    incident = await bot.declare("P2 Slow search")
    await bot.command(f"started {text}", channel=incident.channel_id or "")
    assert "is not a time" in bot.last_reply() and "/incident started" in bot.last_reply()
    assert (await bot.incident(incident.id or 0)).impact_started_at is None


async def test_started_at_a_clock_time_the_day_after_the_resolve_means_the_incident_s_day(
    bot: BotHarness, clock: FakeClock
) -> None:
    """The impact start is usually corrected while writing the post-mortem, the next day: `08:45` is the
    08:45 before the resolve, not this morning's (which is after it)."""
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=30))
    await bot.command("resolve rolled back", channel=channel)
    clock.set(T0 + timedelta(days=1, hours=1))  # 10:00 the next day
    await bot.command("started 08:45", channel=channel, user="U0BOB")
    said = f"impact started at {slack_date(T0 - timedelta(minutes=15))}; time to detect 15m 00s"
    assert said in bot.last_reply(), bot.last_reply()
    assert (await bot.incident(incident.id or 0)).impact_started_at == T0 - timedelta(minutes=15)


async def test_the_correction_on_the_timeline_says_the_time_to_detect_the_post_mortem_does(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Declared at 09:00:00.3, `-15m` at 09:10:00.6 is 08:55:00.6: 5m 00s between the times as shown, as the
    reply and the key metrics say, and so the key timeline's line too (not 4m 59s)."""
    clock.set(T0 + timedelta(microseconds=300_000))
    incident = await bot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    clock.set(T0 + timedelta(minutes=10, microseconds=600_000))
    await bot.command("started -15m", channel=channel)
    assert "time to detect 5m 00s" in bot.last_reply()
    await bot.command("resolve rolled back", channel=channel)
    text = latest_postmortem(bot)
    assert "- Time to detect (impact start to declaration): 5m 00s\n" in text
    assert "impact start set to 2026-11-20 08:55:00 UTC (time to detect 5m 00s)" in text
