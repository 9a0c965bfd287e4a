"""The public page in a real browser (Debian Chromium): styled, readable on a desktop and on a phone."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.statuspage import health_days
from bot.statuspage.models import ComponentStatus
from tests.browser import screenshot
from tests.harness import BotHarness
from tests.statuspage.conftest import page_of


async def _history(bot: BotHarness, clock: FakeClock) -> None:
    """Twelve weeks of probes with a few bad days, a past incident and an ongoing one."""
    start = clock.now()
    async with bot.deps.db.session() as session:
        for days_ago in range(84, 0, -1):
            when = start - timedelta(days=days_ago)
            for component in ("Checkout API", "Website"):
                status = ComponentStatus.OPERATIONAL
                if component == "Website" and days_ago in (40, 41):
                    status = ComponentStatus.DEGRADED
                if component == "Checkout API" and days_ago == 20:
                    status = ComponentStatus.MAJOR
                await health_days.record_probe(session, component=component, status=status, at=when)
    clock.set(start - timedelta(days=6))
    old = await bot.declare("P2 service:web Slow pages")
    await bot.command("publish minor Some pages load slowly. We are looking into it.", channel=old.channel_id or "")
    clock.advance(timedelta(hours=2))
    await bot.command("update monitoring", channel=old.channel_id or "")
    await bot.command("publish A fix is deployed; we are watching.", channel=old.channel_id or "")
    clock.advance(timedelta(hours=1))
    await bot.command("resolve", channel=old.channel_id or "")
    clock.set(start)
    now = await bot.declare("P1 service:api Payments fail")
    await bot.command("publish major Card payments are failing for some customers.", channel=now.channel_id or "")
    clock.advance(timedelta(minutes=20))
    await bot.command("update identified", channel=now.channel_id or "")
    await bot.command("publish The cause is found and a fix is rolling out.", channel=now.channel_id or "")
    await page_of(bot).refresh()


async def test_the_status_page_renders_on_desktop_and_phone(sbot: BotHarness, clock: FakeClock, browser: Any) -> None:
    await sbot.settle()
    await _history(sbot, clock)
    url = f"{sbot.url}/status-page"

    def look(width: int, height: int, name: str) -> dict[str, Any]:
        browser.set_window_size(width, height)
        browser.get(url)
        overall = browser.find_element("css selector", ".overall")
        bars = browser.find_elements("css selector", ".component .bar")
        shot = screenshot(browser, name)
        return {
            "title": browser.title,
            "overall": overall.text,
            "overall_bg": overall.value_of_css_property("background-color"),
            "visible_bars": sum(1 for b in bars if b.is_displayed()),
            "bars": len(bars),
            "updates": [e.text for e in browser.find_elements("css selector", ".incidents .msg")],
            "history": [e.text for e in browser.find_elements("css selector", ".history h3")],
            "scroll_width": browser.execute_script("return document.documentElement.scrollWidth"),
            "shot": shot,
        }

    # Selenium blocks: drive it from a thread so the bot (on this loop) can answer the browser.
    desktop = await asyncio.to_thread(look, 1280, 1900, "status-page-desktop")
    phone = await asyncio.to_thread(look, 390, 2200, "status-page-phone")

    assert desktop["title"] == "Acme status: Partial System Outage"
    assert desktop["overall"] == "Partial System Outage"
    assert desktop["overall_bg"] not in ("rgba(0, 0, 0, 0)", "transparent")  # the stylesheet is applied
    assert desktop["bars"] == 180 and desktop["visible_bars"] == 180
    assert desktop["updates"] == [
        "The cause is found and a fix is rolling out.",
        "Card payments are failing for some customers.",
    ]
    assert desktop["history"] == ["Degraded performance: Website"]
    assert phone["visible_bars"] == 60  # the last 30 days per component on a phone
    assert phone["scroll_width"] <= 390  # nothing wider than the screen
    for shot in (desktop["shot"], phone["shot"]):
        assert shot.stat().st_size > 10_000


async def test_a_multi_line_update_and_a_long_title_read_as_written_on_a_phone(
    sbot: BotHarness, clock: FakeClock, browser: Any
) -> None:
    await sbot.settle()
    incident = await sbot.declare("P1 service:api Payments fail")
    message = "Card payments fail for some customers.\nAffected:\n- checkout\n- refunds"
    title = "Payments-failing-at-checkout.acme.com/v2/payments/authorize-" + "x" * 100
    values = {
        "impact": {"value": {"type": "static_select", "selected_option": {"value": "major"}}},
        "components": {"value": {"type": "multi_static_select", "selected_options": [{"value": "Checkout API"}]}},
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "message": {"value": {"type": "plain_text_input", "value": message}},
    }
    await sbot.submit("status_page_publish", values, private_metadata=str(incident.id))
    await page_of(sbot).refresh()
    url = f"{sbot.url}/status-page"

    def look() -> dict[str, Any]:
        browser.set_window_size(390, 1600)
        browser.get(url)
        return {
            "message": browser.find_element("css selector", ".incidents .msg").text,
            "title": browser.find_element("css selector", ".incidents h3").text,
            "scroll_width": browser.execute_script("return document.documentElement.scrollWidth"),
            "shot": screenshot(browser, "status-page-multi-line"),
        }

    phone = await asyncio.to_thread(look)

    assert phone["message"] == message  # its lines, not one run-on line
    assert phone["title"].replace("\n", "") == title
    assert phone["scroll_width"] <= 390
