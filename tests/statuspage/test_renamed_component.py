"""`status_page.renamed`: a component renamed in bot.yml keeps its history, its public id and its incidents."""

from __future__ import annotations

import asyncio
import copy
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.clock import FakeClock
from bot.config import load_bot_config
from bot.exceptions import ConfigError
from bot.statuspage import health_days, renames
from bot.statuspage.models import ComponentDay, ComponentStatus
from tests.fakes.statuspage import FakeStatuspage
from tests.statuspage.conftest import CONFIG, StartBot, public


def renamed_config() -> dict[str, Any]:
    config = copy.deepcopy(CONFIG)
    config["status_page"]["components"] = {"Checkout": ["api"], "Website": ["web"]}
    config["status_page"]["renamed"] = {"Checkout API": "Checkout"}
    return config


async def test_a_renamed_component_keeps_its_bars_id_and_open_incident(
    statuspage: FakeStatuspage, clock: FakeClock, start_page_bot: StartBot
) -> None:
    async with start_page_bot() as bot:
        async with bot.deps.db.session() as session:
            for _ in range(2):
                await health_days.record_probe(
                    session,
                    component="Checkout API",
                    status=ComponentStatus.DEGRADED,
                    at=clock.now() - timedelta(days=10),
                )
        incident = await bot.declare("P1 service:api Payments fail")
        await bot.command("publish major We are investigating failed payments.", channel=incident.channel_id or "")
        before, _, _ = await public(bot)
    [old] = [c for c in before["components"] if c["name"] == "Checkout API"]

    async with start_page_bot(renamed_config()) as bot:
        summary, html, _ = await public(bot)
        [new] = [c for c in summary["components"] if c["name"] == "Checkout"]
        assert new["id"] == old["id"]  # readers of summary.json keep following it
        assert new["status"] == "partial_outage"  # the open incident still holds it down
        [public_incident] = summary["incidents"]
        assert [c["name"] for c in public_incident["components"]] == ["Checkout"]
        assert (
            '<span class="name">Checkout API</span>' not in html
        )  # (its incident keeps the name it was published with)
        section = html.split('<span class="name">Checkout</span>', 1)[1].split('class="bars-legend"', 1)[0]
        assert "2 checks, 0 failed" in section  # the degraded day, 10 days ago, is still on its bars

        await bot.command("resolve payments are back", channel=incident.channel_id or "")
        for _ in range(100):  # the outbox sends the resolution a second or more after the last call
            if statuspage.components["cmp_api"] == "operational":
                break
            await asyncio.sleep(0.1)
        # The restarted bot does not know the first one's last call: Statuspage may throttle it once (420).
        assert [c.status for c in statuspage.refused] in ([], [420])
        assert statuspage.calls[-1].body["incident"]["components"] == {"cmp_api": "operational"}  # accepted ones


async def test_days_of_both_names_are_merged_once(database_url: str, db: Any, clock: FakeClock) -> None:
    # Midday: the probes an hour or two before stay on the same date whatever time the tests run at.
    day = (clock.now() - timedelta(days=1)).replace(hour=12, minute=0, second=0)
    async with db.session() as session:
        await health_days.record_probe(session, component="Checkout API", status=ComponentStatus.MAJOR, at=day)
        await health_days.record_probe(
            session, component="Checkout", status=ComponentStatus.OPERATIONAL, at=day - timedelta(hours=1)
        )
        await health_days.record_probe(
            session, component="Checkout", status=ComponentStatus.DEGRADED, at=day - timedelta(hours=2)
        )
    for expected in ((1, 0), (0, 0)):  # a second start finds nothing to move
        async with db.session() as session:
            assert await renames.apply(session, renamed={"Checkout API": "Checkout"}) == expected
    async with db.session() as session:
        rows = await health_days.component_days(session, since=day.date())
    assert [(r.component, r.probes, r.down, r.degraded, r.last_status) for r in rows] == [
        ("Checkout", 3, 1, 1, ComponentStatus.MAJOR.value)
    ]
    assert all(isinstance(r, ComponentDay) for r in rows)


@pytest.mark.parametrize(
    ("renamed", "message"),
    [
        ({"Website": "Checkout API"}, "'Website' is still a component"),
        ({"Checkout": "Storefront"}, "'Storefront' is not a component (components: Checkout API, Website)"),
    ],
)
def test_a_rename_that_names_the_wrong_component_is_refused(
    tmp_path: Path, renamed: dict[str, str], message: str
) -> None:
    config = copy.deepcopy(CONFIG)
    config["status_page"]["renamed"] = renamed
    path = tmp_path / "bot.yml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_bot_config(path, required=True)
