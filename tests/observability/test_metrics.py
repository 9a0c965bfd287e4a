"""GET /metrics through the real app: commands, ack latency, pages, Slack errors and 429s, open incidents."""

from __future__ import annotations

import re
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.deps import Deps
from bot.observability import Metrics
from tests.harness import BotHarness


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {
        "oncall": {"rotation": {"users": ["U0BOB"]}},
        "escalation": {
            "levels": [
                {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
                {"name": "Team lead", "after": "15m", "notify": ["U0LEAD"]},
            ]
        },
    }


async def scrape(bot: BotHarness) -> dict[str, float]:
    response = await bot.http.get(f"{bot.url}/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(response.text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(sample.labels.items()))
            samples[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return samples


async def test_commands_are_counted_by_command_and_subcommand(bot: BotHarness) -> None:
    await bot.declare("P1 Checkout is down")
    await bot.command("list")
    await bot.command("list")
    await bot.command("frobnicate")
    samples = await scrape(bot)
    assert samples['incident_bot_commands_total{command="/incident",subcommand="declare"}'] == 1
    assert samples['incident_bot_commands_total{command="/incident",subcommand="list"}'] == 2
    assert samples['incident_bot_commands_total{command="/incident",subcommand="invalid"}'] == 1


async def test_ack_latency_is_observed_for_commands_and_buttons(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Search is slow")
    await bot.click("incident_ack", str(incident.id), user="U0BOB", channel=incident.channel_id)
    samples = await scrape(bot)
    assert samples['incident_bot_ack_latency_seconds_count{kind="command"}'] == 1
    assert samples['incident_bot_ack_latency_seconds_count{kind="block_actions"}'] == 1
    # Acked well inside Slack's 3 s: the 3 s bucket holds every observation.
    assert samples['incident_bot_ack_latency_seconds_bucket{kind="command",le="3.0"}'] == 1
    assert samples['incident_bot_ack_latency_seconds_sum{kind="command"}'] > 0


async def test_open_incidents_gauge_comes_from_the_database_at_scrape_time(bot: BotHarness) -> None:
    await bot.declare("P1 Checkout is down")
    second = await bot.declare("P3 Typo on the pricing page")
    samples = await scrape(bot)
    assert samples['incident_bot_open_incidents{severity="P1"}'] == 1
    assert samples['incident_bot_open_incidents{severity="P3"}'] == 1
    assert samples['incident_bot_open_incidents{severity="P2"}'] == 0
    await bot.command("resolve fixed", channel=second.channel_id or "")
    samples = await scrape(bot)
    assert samples['incident_bot_open_incidents{severity="P3"}'] == 0


async def test_slack_errors_and_rate_limits_are_counted(bot: BotHarness) -> None:
    bot.fake.throttle("conversations.create", count=1, retry_after=1)
    bot.fake.fail("pins.add", "not_pinnable")
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.channel_id is not None  # the 429 was retried
    samples = await scrape(bot)
    assert samples['incident_bot_slack_api_ratelimited_total{method="conversations.create"}'] == 1
    assert samples['incident_bot_slack_api_errors_total{error="ratelimited",method="conversations.create"}'] == 1
    assert samples['incident_bot_slack_api_errors_total{error="not_pinnable",method="pins.add"}'] == 1


async def test_page_counters_are_exposed_for_the_escalation_domain(bot: BotHarness) -> None:
    metrics = bot.deps.metrics
    before = await scrape(bot)
    metrics.page_sent()
    metrics.page_sent(late=True)
    metrics.page_failed()
    after = await scrape(bot)
    assert after["incident_bot_pages_sent_total"] - before["incident_bot_pages_sent_total"] == 2
    assert after["incident_bot_pages_late_total"] - before["incident_bot_pages_late_total"] == 1
    assert after["incident_bot_pages_failed_total"] - before["incident_bot_pages_failed_total"] == 1


async def test_each_app_has_its_own_registry(bot: BotHarness) -> None:
    other = Deps(settings=bot.settings, db=bot.deps.db, clock=bot.deps.clock, http=bot.deps.http)
    other.metrics.page_sent()
    assert other.metrics is not bot.deps.metrics
    text = (await bot.http.get(f"{bot.url}/metrics")).text
    assert re.search(r"^incident_bot_pages_sent_total 0\.0$", text, re.M)
    assert isinstance(bot.deps.metrics, Metrics)


async def test_alert_counters(bot: BotHarness) -> None:
    from tests.alerts import payloads as p
    from tests.alerts.helpers import send

    await send(bot, p.alertmanager([p.am_alert()]))
    await send(bot, b"nonsense")
    samples = await scrape(bot)
    assert samples['incident_bot_alerts_received_total{source="alertmanager",status="firing"}'] == 1
    assert samples['incident_bot_alerts_rejected_total{reason="malformed",source="alertmanager"}'] == 1


async def test_pages_in_the_database_are_counted_at_scrape_time(bot: BotHarness) -> None:
    """Counted from the page rows, so every replica reports the same numbers."""
    await bot.declare("P1 Checkout is down")
    await bot.deps.background.drain()
    await bot.settle()
    samples = await scrape(bot)
    assert samples['incident_bot_pages{state="sent"}'] >= 1  # level 1, at once
    assert samples['incident_bot_pages{state="pending"}'] >= 1  # the later levels, not yet due
    assert samples['incident_bot_pages{state="late"}'] == 0
