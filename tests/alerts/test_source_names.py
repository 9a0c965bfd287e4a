"""What a configured source is called belongs to the bot it is configured in: two bots in one process
(the demo and the bot, or two tests' bots) with the same source id each show their own name."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.alerts import source_bodies as b
from tests.alerts.helpers import alert_messages, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, TaskTracker, start_bot
from tests.pg import create_database

TOKEN = "alerts-token-5e6f7a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


def _config(preset: str, alerts_channel: str) -> dict[str, Any]:
    return {
        "channels": {"announcements": "C0INCIDENTS", "alerts": alerts_channel},
        "alerts": {
            "auto_declare": [{"match": {"severity": "critical"}, "severity": "P1"}],
            "sources": {"mon": {"preset": preset}},
        },
    }


def _other_database(tmp_path: Path, postgres_admin_url: str | None) -> str:
    if postgres_admin_url is None:
        return f"sqlite:///{tmp_path / 'other.db'}"
    return postgres_admin_url.rsplit("/", 1)[0] + "/" + create_database(postgres_admin_url)


async def test_two_bots_with_one_source_id_each_show_their_own_name(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, postgres_admin_url: str | None
) -> None:
    fake_slack.add_channel("alerts-two", channel_id="C0ALERTS2")
    first = make_settings(
        fake=fake_slack,
        database_url=database_url,
        tmp_path=tmp_path,
        config=_config("pingdom", "C0ALERTS"),
        alerts_token=TOKEN,
    )
    (tmp_path / "two").mkdir()
    second = make_settings(
        fake=fake_slack,
        database_url=_other_database(tmp_path, postgres_admin_url),
        tmp_path=tmp_path / "two",
        config=_config("betterstack", "C0ALERTS2"),
        alerts_token=TOKEN,
    )
    # Both set up before either hears an alert: the one set up last must not name the other's source.
    pingdom, stop_first = await start_bot(fake=fake_slack, settings=first)
    betterstack, stop_second = await start_bot(fake=fake_slack, settings=second)
    # Each harness would track the other's start-up tasks: both settle on one tracker (as tests/replicas do).
    shared = TaskTracker(asyncio.get_running_loop())
    betterstack.tracker.uninstall()
    pingdom.tracker.uninstall()
    shared.install()
    pingdom.tracker = betterstack.tracker = shared
    try:
        await _each_names_its_own(pingdom, betterstack)
    finally:
        await shared.settle()
        shared.uninstall()
        await stop_second()
        await stop_first()


async def _each_names_its_own(pingdom: BotHarness, betterstack: BotHarness) -> None:
    assert (await send(pingdom, b.encoded(b.pingdom("DOWN")), source="mon", headers=BEARER)).status_code == 200
    fired = await send(betterstack, b.encoded(b.betterstack(False)), source="mon", headers=BEARER)
    assert fired.status_code == 200
    [card] = alert_messages(pingdom, "C0ALERTS")
    assert "Pingdom (mon)" in rendered(card) and "Better Stack" not in rendered(card)
    [other] = alert_messages(betterstack, "C0ALERTS2")
    assert "Better Stack (mon)" in rendered(other) and "Pingdom" not in rendered(other)

    # The incident the first declared says where it came from by that bot's name, on every line.
    incident = await pingdom.incident(1)
    assert "From Pingdom (mon): 1 alert(s) firing." in (incident.description or "")
    assert (await send(pingdom, b.encoded(b.pingdom("UP")), source="mon", headers=BEARER)).status_code == 200
    lines = [e.text for e in await pingdom.timeline(1) if e.kind == "alert"]
    assert any(line.startswith("declared automatically from Pingdom (mon) alert") for line in lines), lines
    assert any(line.startswith("Pingdom (mon): Checkout is up resolved") for line in lines), lines
    assert not any("Better Stack" in line for line in lines), lines
