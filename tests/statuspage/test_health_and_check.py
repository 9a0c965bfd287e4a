"""Component health probed on the page's own schedule, stored per day, shown as 90 daily bars; `bot check`."""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.check import run_check
from bot.clock import FakeClock
from bot.config import load_bot_config
from bot.exceptions import ConfigError
from bot.statuspage import health_days
from bot.statuspage.models import ComponentStatus
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness
from tests.statuspage.conftest import CONFIG, Health, page_of, public


def _bars(html: str, component: str) -> list[tuple[str, str]]:
    section = html.split(f'<span class="name">{component}</span>', 1)[1].split('class="bars-legend"', 1)[0]
    bars: list[tuple[str, str]] = re.findall(r'class="bar bar-([a-z_]+)" title="([^"]*)"', section)
    return bars


async def test_probes_colour_the_component_and_its_bars(sbot: BotHarness, health: Health, clock: FakeClock) -> None:
    bot = sbot
    page = page_of(bot)
    await bot.settle()  # the start-up probe (all healthy) is done
    async with bot.deps.db.session() as session:
        for _ in range(3):
            await health_days.record_probe(
                session, component="Website", status=ComponentStatus.DEGRADED, at=clock.now() - timedelta(days=10)
            )
        await health_days.record_probe(
            session, component="Website", status=ComponentStatus.OPERATIONAL, at=clock.now() - timedelta(days=11)
        )
    health.states["api"] = "down"
    await page.probe()
    summary, html, _ = await public(bot)
    statuses = {c["name"]: c["status"] for c in summary["components"]}
    assert statuses == {"Checkout API": "major_outage", "Website": "operational"}
    assert summary["status"]["indicator"] == "critical" and summary["incidents"] == []

    api_bars = _bars(html, "Checkout API")
    web_bars = [status for status, _ in _bars(html, "Website")]
    assert len(api_bars) == 90 and len(web_bars) == 90
    # The start-up probe passed and this one failed: today is red, with both checks in its tooltip.
    assert api_bars[-1][0] == "major_outage" and "2 checks, 1 failed" in api_bars[-1][1]
    assert web_bars[-1] == "operational" and web_bars[-11] == "degraded_performance"
    assert web_bars[-12] == "operational" and web_bars[-13] == "none" and web_bars[0] == "none"

    health.states["api"] = "ok"
    await page.probe()
    summary, html, _ = await public(bot)
    assert {c["name"]: c["status"] for c in summary["components"]}["Checkout API"] == "operational"
    today = _bars(html, "Checkout API")[-1]
    assert today[0] == "major_outage" and "3 checks, 1 failed" in today[1]  # a quarter or more failed: red
    for _ in range(2):
        await page.probe()
    _, html, _ = await public(bot)
    today = _bars(html, "Checkout API")[-1]
    assert today[0] == "partial_outage" and "5 checks, 1 failed" in today[1]  # under a quarter: orange
    assert "80.00 % uptime" in html


async def test_a_published_incident_colours_the_days_it_was_open(sbot: BotHarness, clock: FakeClock) -> None:
    incident = await sbot.declare("P2 service:web Slow pages")
    await sbot.command("publish minor Pages are slow.", channel=incident.channel_id or "")
    clock.advance(timedelta(days=2))
    await sbot.command("resolve", channel=incident.channel_id or "")
    _, html, _ = await public(sbot)
    bars = _bars(html, "Website")
    assert [status for status, _ in bars[-3:]] == ["degraded_performance"] * 3
    assert "Degraded performance: Website" in bars[-2][1]


async def test_a_day_is_coloured_by_what_the_public_was_told_that_day_not_later(
    sbot: BotHarness, clock: FakeClock
) -> None:
    """An incident that was minor for two days and turned critical on the third: the first two days
    stay yellow (degraded), as Statuspage colours each day by the worst status of that day."""
    incident = await sbot.declare("P2 service:web Slow pages")
    channel = incident.channel_id or ""
    await sbot.command("publish minor Pages are slow.", channel=channel)
    clock.advance(timedelta(days=2))
    await sbot.command("publish critical The website is down.", channel=channel)
    clock.advance(timedelta(days=1))
    await sbot.command("resolve", channel=channel)
    _, html, _ = await public(sbot)
    bars = [status for status, _ in _bars(html, "Website")]
    assert bars[-4:] == ["degraded_performance", "degraded_performance", "major_outage", "major_outage"]


def _write(tmp_path: Path, config: dict[str, Any]) -> Path:
    path = tmp_path / "bot.yml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


def test_components_must_name_real_services(tmp_path: Path) -> None:
    broken = {**CONFIG, "status_page": {"components": {"Checkout API": ["api", "payments"]}}}
    with pytest.raises(ConfigError) as raised:
        load_bot_config(_write(tmp_path, broken), required=True)
    assert "status_page.components.Checkout API: unknown service 'payments' (services: api, billing, web)" in str(
        raised.value
    )
    mapped = {
        **CONFIG,
        "status_page": {"components": {"A": ["api"]}, "statuspage": {"page_id": "p", "components": {"nope": "c"}}},
    }
    with pytest.raises(ConfigError, match="status_page.statuspage.components: unknown service 'nope'"):
        load_bot_config(_write(tmp_path, mapped), required=True)
    with pytest.raises(ConfigError, match="status_page.components: component .Empty. names no service"):
        load_bot_config(_write(tmp_path, {**CONFIG, "status_page": {"components": {"Empty": []}}}), required=True)


async def test_check_wants_the_api_key_env_var(
    fake_slack: FakeSlack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("STATUSPAGE_API_KEY", raising=False)
    config = {**CONFIG, "services": {**CONFIG["services"], "api": {}}}
    settings = make_settings(
        fake=fake_slack, database_url=f"sqlite:///{tmp_path / 'b.db'}", tmp_path=tmp_path, config=config
    )
    assert await run_check(settings) == 1
    out = capsys.readouterr().out
    assert (
        "error: status_page.statuspage: environment variable STATUSPAGE_API_KEY (the Statuspage API key) is not set"
        in out
    )
    assert "status_page.components.Checkout API: api has no health_url" in out
    assert "status page: 2 component(s) at /status-page" in out
