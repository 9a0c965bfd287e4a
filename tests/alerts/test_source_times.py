"""When a preset sender's alert started and ended, by the sender's own clock, whatever order its deliveries
land in: a repeat of an alert that still fires, a retried resolve of an earlier outage, a replayed delivery."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import service as alert_service
from tests.alerts import source_bodies as b
from tests.alerts.helpers import alert_messages, button_value, groups, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

TOKEN = "alerts-token-7d6e5f"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SOURCES: dict[str, Any] = {
    "uptime": {"preset": "uptimerobot"},
    "dd": {"preset": "datadog"},
    "sentry": {"preset": "sentry", "client_secret_env": "TEST_SENTRY_SECRET"},
}


@pytest.fixture
async def sbot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("TEST_SENTRY_SECRET", b.SENTRY_SECRET)
    config = {"alerts": {"sources": SOURCES}}
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config, alerts_token=TOKEN
    )
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness


def _ago(minutes: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


Delivery = tuple[str, bytes, dict[str, str]]


def _uptimerobot_down(at: datetime) -> Delivery:
    """UptimeRobot notifying again while the monitor is down: `alertDateTime` is that notification's time."""
    body = {**b.uptimerobot("1"), "alertDateTime": str(int(at.timestamp()))}
    return f"uptime?token={TOKEN}", b.encoded(body), {}


def _datadog_triggered(at: datetime, transition: str = "Triggered") -> Delivery:
    """Datadog's `$DATE`: when the monitor triggered, or when a Re-Triggered (renotification) was sent."""
    body = {**b.datadog(transition), "date": str(int(at.timestamp() * 1000))}
    return "dd", b.encoded(body), BEARER


def _datadog_repeat(at: datetime) -> Delivery:
    return _datadog_triggered(at, "Re-Triggered")


def _sentry_event(at: datetime) -> Delivery:
    """Each Sentry event alert carries the event that triggered the rule, with that event's time."""
    body = b.sentry_event_alert()
    body["data"]["event"]["datetime"] = at.isoformat(timespec="microseconds").replace("+00:00", "Z")
    raw = b.encoded(body)
    return "sentry", raw, b.sentry_headers(raw, "event_alert")


REPEATS: dict[str, Callable[[datetime], Delivery]] = {
    "uptimerobot": _uptimerobot_down,
    "datadog": _datadog_repeat,
    "sentry": _sentry_event,
}


async def _post(bot: BotHarness, delivery: Delivery) -> None:
    source, body, headers = delivery
    response = await send(bot, body, source=source, headers=headers)
    assert response.status_code == 200, response.text


async def _starts(bot: BotHarness) -> list[datetime | None]:
    [group] = await groups(bot)
    async with bot.deps.db.session() as session:
        return [i.starts_at for i in await alert_service.instances(session, group_id=group.id or 0)]


async def _declare_from_the_card(bot: BotHarness) -> None:
    """Declare incident on the card, the form submitted as it opens."""
    message = alert_messages(bot)[-1]
    value = button_value(message, "alert_declare")
    await bot.click("alert_declare", value, user="U0BOB", channel="C0ALERTS", message_ts=message.ts)
    view = bot.fake.views[-1]["view"]
    values: dict[str, Any] = {}
    for block in view["blocks"]:
        element = block.get("element", {})
        if element.get("type") == "static_select":
            values[block["block_id"]] = {
                "value": {"type": "static_select", "selected_option": element.get("initial_option")}
            }
        else:
            values[block["block_id"]] = {"value": {"type": "plain_text_input", "value": element.get("initial_value")}}
    await bot.submit("alert_declare_submit", values, user="U0BOB", private_metadata=view["private_metadata"])


@pytest.mark.parametrize("sender", list(REPEATS))
async def test_a_repeat_of_an_alert_that_still_fires_keeps_its_start(sbot: BotHarness, sender: str) -> None:
    """Down since 08:30, notified again at 08:50: the card said "since 08:50", and declaring from it counted
    the time to detect from 08:50, as if the outage had begun with the reminder."""
    repeat = REPEATS[sender]
    first, again = _ago(40), _ago(10)
    await _post(sbot, _datadog_triggered(first) if sender == "datadog" else repeat(first))
    await _post(sbot, repeat(again))

    assert await _starts(sbot) == [first]
    await _declare_from_the_card(sbot)
    assert (await sbot.incident(1)).impact_started_at == first  # time to detect counts from 08:30


async def test_after_a_resolve_the_next_outage_takes_its_own_start(sbot: BotHarness) -> None:
    await _post(sbot, _datadog_triggered(_ago(40)))
    recovered = {**b.datadog("Recovered"), "date": str(int(_ago(30).timestamp() * 1000))}
    await _post(sbot, ("dd", b.encoded(recovered), BEARER))
    again = _ago(10)
    await _post(sbot, _datadog_triggered(again))

    assert await _starts(sbot) == [again]


async def test_an_uptimerobot_up_without_alert_date_time_still_clears(sbot: BotHarness) -> None:
    """A webhook set up before `*alertDateTime*` was asked for: its up is timed by the bot's clock, as before."""
    down = {k: v for k, v in b.uptimerobot("1").items() if k != "alertDateTime"}
    up = {k: v for k, v in b.uptimerobot("2").items() if k != "alertDateTime"}
    await _post(sbot, (f"uptime?token={TOKEN}", b.encoded(down), {}))
    await _post(sbot, (f"uptime?token={TOKEN}", b.encoded(up), {}))
    [group] = await groups(sbot)
    assert group.status == "resolved"


async def test_the_resolve_of_the_one_sentry_event_that_fired_clears_it(sbot: BotHarness) -> None:
    """The event alert's time is in microseconds, the issue's `lastSeen` in milliseconds: the resolve whose
    last seen event is the one that fired is not older than that event."""
    fired = _ago(12).replace(microsecond=654321)
    await _post(sbot, _sentry_event(fired))
    resolved = b.sentry_issue("resolved", last_seen=fired.replace(microsecond=654000))
    raw = b.encoded(resolved)
    await _post(sbot, ("sentry", raw, b.sentry_headers(raw, "issue")))
    [group] = await groups(sbot)
    assert group.status == "resolved"


async def test_a_datadog_trigger_whose_recovery_is_still_on_its_way_starts_anew(sbot: BotHarness) -> None:
    """Triggered at 08:30, recovered at 08:40 (answered 503: Datadog retries it), triggered again at 08:55,
    then the retried recovery lands. A new Triggered is a new alert: its start is 08:55, so the 08:40
    recovery is about the one before and does not clear it."""
    again = _ago(5)
    await _post(sbot, _datadog_triggered(_ago(30)))
    await _post(sbot, _datadog_triggered(again))
    assert await _starts(sbot) == [again]
    recovered = {**b.datadog("Recovered"), "date": str(int(_ago(20).timestamp() * 1000))}
    await _post(sbot, ("dd", b.encoded(recovered), BEARER))
    [group] = await groups(sbot)
    assert group.status == "firing"
