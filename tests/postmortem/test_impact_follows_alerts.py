"""The impact start follows the earliest `startsAt` of every alert of every group linked to the incident,
as the alerts arrive: only earlier, only before the declaration, never over a person's `/incident started`,
never on a resolved incident. Through the real app: Alertmanager deliveries, a clock the tests move, the
post-mortem's time to detect and the incident row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.clock import FakeClock
from bot.timeline import events
from bot.timeline.models import TimelineEvent
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, send
from tests.harness import BotHarness, slack_date
from tests.postmortem.test_time_to_detect import latest_postmortem

pytestmark = pytest.mark.parametrize("bot_config", [AUTO])

ROUTE_B = '{}/{team="payments"}:{alertname="HighErrorRate"}'


def at(hhmm: str) -> datetime:
    return datetime.fromisoformat(f"2026-11-20T{hhmm}:00+00:00").astimezone(UTC)


def alert(instance: str, starts: str) -> dict[str, object]:
    return p.am_alert(severity="critical", instance=instance, starts_at=f"2026-11-20T{starts}:00Z")


async def moves(bot: BotHarness, number: int) -> list[tuple[TimelineEvent, events.AlertChanged]]:
    """The timeline's impact moves by alerts: alert events that carry where the start went (a link's says it
    as well as the link; a delivery's move is an event of its own)."""
    found = []
    for event in await bot.timeline(number):
        payload = events.read(event)
        if isinstance(payload, events.AlertChanged) and payload.impact_started_at is not None:
            assert "impact start moved earlier to " in event.text, event.text
            found.append((event, payload))
    return found


async def test_an_alert_joining_later_with_an_earlier_start_moves_the_impact_start(
    bot: BotHarness, clock: FakeClock
) -> None:
    """Alertmanager's group_interval brings a second instance that started failing first."""
    first = alert("api-1:9090", "08:55")
    await send(bot, p.alertmanager([first]))
    incident = await bot.incident(1)
    assert incident.impact_started_at == at("08:55") and incident.time_to_detect == timedelta(minutes=5)

    clock.advance(timedelta(minutes=2))
    await send(bot, p.alertmanager([first, alert("api-2:9090", "08:40")]))
    incident = await bot.incident(1)
    assert incident.impact_started_at == at("08:40") and incident.time_to_detect == timedelta(minutes=20)
    [(link, link_payload), (event, payload)] = await moves(bot, 1)
    assert link_payload.impact_previous is None and link_payload.impact_started_at == at("08:55")
    assert link.text.startswith("declared automatically from Alertmanager alert HighErrorRate (1 firing): ")
    assert link.text.endswith(
        "; impact start moved earlier to 2026-11-20 08:55:00 UTC, when HighErrorRate started firing "
        "(time to detect 5m 00s; it was the declaration, 0s)"
    )
    assert event.key and event.actor == "alertmanager" and event.at == clock.now()
    assert payload.impact_started_at == at("08:40") and payload.impact_previous == at("08:55")
    assert event.text == (
        "impact start moved earlier to 2026-11-20 08:40:00 UTC, when HighErrorRate started firing "
        "(time to detect 20m 00s; it was 08:55:00 UTC, 5m 00s)"
    )

    # Later starts, and one after the declaration, leave it where it is.
    clock.advance(timedelta(minutes=2))
    await send(bot, p.alertmanager([first, alert("api-2:9090", "08:40"), alert("api-3:9090", "08:50")]))
    await send(bot, p.alertmanager([alert("api-4:9090", "09:03")]))
    assert (await bot.incident(1)).impact_started_at == at("08:40")
    assert len(await moves(bot, 1)) == 2

    clock.advance(timedelta(minutes=10))
    await bot.command("resolve fixed", channel=incident.channel_id or "")
    text = latest_postmortem(bot)
    assert "| Start | 2026-11-20 08:40:00 UTC (first alert) |" in text
    assert "- Time to detect (impact start to declaration): 20m 00s\n" in text
    assert "| Impact started | 2026-11-20 08:40:00 | -20m 00s | first alert |" in text
    assert "impact start moved earlier to 2026-11-20 08:40:00 UTC" in text  # a key event, explained
    await bot.command("stats", channel="C0GENERAL")
    assert "Time to detect: mean *20m 00s*" in bot.last_reply()


async def test_a_group_linked_later_by_a_shared_fingerprint_does_not_move_it(bot: BotHarness, clock: FakeClock) -> None:
    """Another route delivers the same alert with one that started earlier: that group joins INC-1 by the
    shared alert, but its other alert did not lead to this incident, before or after the link."""
    shared = alert("api-1:9090", "08:55")
    await send(bot, p.alertmanager([shared]))
    assert (await bot.incident(1)).impact_started_at == at("08:55")

    clock.advance(timedelta(minutes=3))
    await send(bot, p.alertmanager([shared, alert("db-1:9090", "08:30")], group_key=ROUTE_B))
    await send(bot, p.alertmanager([shared, alert("db-2:9090", "08:20")], group_key=ROUTE_B))
    incident = await bot.incident(1)
    assert incident.impact_started_at == at("08:55") and incident.time_to_detect == timedelta(minutes=5)
    assert len(await moves(bot, 1)) == 1  # the declaration's link only


async def test_an_alert_that_started_weeks_before_is_not_the_start(bot: BotHarness, clock: FakeClock) -> None:
    """Further back than a person may set it (30 days): an alert left firing for weeks did not start this."""
    first = alert("api-1:9090", "08:55")
    await send(bot, p.alertmanager([first]))
    clock.advance(timedelta(minutes=2))
    old = alert("api-2:9090", "08:40")
    old["startsAt"] = "2026-10-01T08:40:00Z"
    await send(bot, p.alertmanager([first, old, alert("api-3:9090", "08:45")]))
    assert (await bot.incident(1)).impact_started_at == at("08:45")


async def test_a_persons_correction_is_never_moved_by_alerts(bot: BotHarness, clock: FakeClock) -> None:
    first = alert("api-1:9090", "08:55")
    await send(bot, p.alertmanager([first]))
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    clock.advance(timedelta(minutes=2))
    await bot.command("started 08:50", channel=channel, user="U0BOB")
    assert (await bot.incident(1)).impact_started_at == at("08:50")

    clock.advance(timedelta(minutes=2))
    await send(bot, p.alertmanager([first, alert("api-2:9090", "08:20")]))
    await send(bot, p.alertmanager([first], group_key=ROUTE_B))  # a second group linked by fingerprint
    incident = await bot.incident(1)
    assert incident.impact_started_at == at("08:50") and incident.time_to_detect == timedelta(minutes=10)
    assert len(await moves(bot, 1)) == 1  # the link's, before the correction

    clock.advance(timedelta(minutes=5))
    await bot.command("resolve fixed", channel=channel)
    text = latest_postmortem(bot)
    assert "| Start | 2026-11-20 08:50:00 UTC (set by @" in text
    assert "- Time to detect (impact start to declaration): 10m 00s\n" in text


async def test_a_correction_later_than_the_alerts_stands_too(bot: BotHarness, clock: FakeClock) -> None:
    """The alert started firing before users were hurt; the person says when they were."""
    first = alert("api-1:9090", "08:40")
    await send(bot, p.alertmanager([first]))
    clock.advance(timedelta(minutes=1))
    await bot.command("started 08:58", channel=(await bot.incident(1)).channel_id or "", user="U0BOB")
    await send(bot, p.alertmanager([first, alert("api-2:9090", "08:45")]))
    assert (await bot.incident(1)).impact_started_at == at("08:58")


async def test_a_resolved_incidents_figures_stay(bot: BotHarness, clock: FakeClock) -> None:
    """The group stays linked while it still fires after the resolve: its deliveries change no figure."""
    first = alert("api-1:9090", "08:55")
    await send(bot, p.alertmanager([first]))
    incident = await bot.incident(1)
    clock.advance(timedelta(minutes=10))
    await bot.command("resolve rolled back", channel=incident.channel_id or "")
    before = await bot.incident(1)

    clock.advance(timedelta(minutes=1))
    await send(bot, p.alertmanager([first, alert("api-2:9090", "08:10")]))
    after = await bot.incident(1)
    assert after.impact_started_at == at("08:55") == before.impact_started_at
    assert after.updated_at == before.updated_at and after.time_to_detect == timedelta(minutes=5)
    assert len(await moves(bot, 1)) == 1
    await bot.command("postmortem", channel=incident.channel_id or "")
    assert "- Time to detect (impact start to declaration): 5m 00s\n" in latest_postmortem(bot)


async def test_the_timeline_in_slack_says_an_alert_s_move_in_the_reader_s_time_zone(
    bot: BotHarness, clock: FakeClock
) -> None:
    """`/incident timeline` shows every time as Slack's date token, in each reader's zone; the line of an
    impact start moved earlier by an alert still said "08:40:00 UTC" and "it was 08:55:00 UTC"."""
    first = alert("api-1:9090", "08:55")
    await send(bot, p.alertmanager([first]))
    clock.advance(timedelta(minutes=2))
    await send(bot, p.alertmanager([first, alert("api-2:9090", "08:40")]))
    incident = await bot.incident(1)
    await bot.command("timeline", channel=incident.channel_id or "")
    reply = bot.last_reply()
    assert " UTC," not in reply and " UTC)" not in reply, reply
    moved = f"impact start moved earlier to {slack_date(at('08:40'), seconds=True)}, when HighErrorRate"
    was = f"(time to detect 20m 00s; it was {slack_date(at('08:55'), seconds=True)}, 5m 00s)"
    assert moved in reply and was in reply, reply
