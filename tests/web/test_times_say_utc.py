"""Every time on the incident page and the list says its zone: a responder reading it at 3 a.m. in
another zone must not have to guess whether 09:00 is theirs or UTC (the phone layout hides the tables'
column headers, so the cell labels say it too)."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from bot.clock import FakeClock, utc
from tests.harness import BotHarness
from tests.web.conftest import Browser
from tests.web.test_browser import ONCALL


def _section(html: str, section_id: str) -> str:
    start = html.index(f'id="{section_id}"')
    return html[start : html.index("</section>", start)]


def _text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


@pytest.mark.parametrize("bot_config", [ONCALL])
async def test_the_incident_page_says_its_times_are_utc(site: BotHarness, alice: Browser, clock: FakeClock) -> None:
    start = utc(clock.now()).replace(microsecond=0)
    day, hour, acked = f"{start:%Y-%m-%d}", f"{start:%H:%M:%S}", start + timedelta(minutes=3)
    incident = await site.declare("P1 Checkout is down")
    clock.advance(timedelta(minutes=3))
    await site.command("ack", channel=incident.channel_id or "", user="U0BOB")
    page = (await alice.get(f"/incidents/{incident.ref}")).text

    metrics = _text(_section(page, "metrics"))
    assert f"Declared {day} {hour} UTC by" in metrics, metrics
    assert f"First acknowledged {acked:%Y-%m-%d %H:%M:%S} UTC (3m 00s after declaration)" in metrics, metrics
    assert f"its start ({day} {hour} UTC, the declaration)" in _text(_section(page, "summary"))

    timeline = _section(page, "timeline")
    assert "Times are UTC." in _text(timeline)
    assert f'<time datetime="{acked:%Y-%m-%dT%H:%M:%S}Z">{acked:%Y-%m-%d %H:%M:%S}</time>' in timeline, timeline
    # On a phone the table headers are hidden: each time cell's own label names the zone.
    pages = _section(page, "pages")
    assert 'data-label="Time (UTC)"' in pages and 'data-label="Time"' not in pages, pages


async def test_the_list_labels_its_times_utc_on_a_phone(site: BotHarness, alice: Browser) -> None:
    await site.declare("P2 Search is slow")
    page = (await alice.get("/")).text
    assert 'data-label="Declared (UTC)"' in page and 'data-label="Declared"' not in page
