"""A title with no spaces (a stack-trace name, a URL pasted into /incident declare) must wrap, not
widen the page: on a desktop it pushed the list's last columns (Commander) off the screen, and on a
phone the list and the incident page's Slack-channel link scrolled sideways."""

from __future__ import annotations

import asyncio
from typing import Any

from bot.clock import FakeClock
from tests.browser import screenshot
from tests.harness import BotHarness

LONG = "NullPointerException.at.com.acme.checkout.PaymentGatewayClient.authorizeCardPaymentWithRetries"
SIZES = {"desktop": (1280, 900), "phone": (390, 844)}


def _look(driver: Any, url: str) -> dict[str, dict[str, int]]:
    driver.get(f"{url}/")  # signs in through the fake Slack
    seen: dict[str, dict[str, int]] = {}
    for name, (width, height) in SIZES.items():
        driver.set_window_size(width, height)
        for page in ("/", "/incidents/INC-1"):
            driver.get(f"{url}{page}")
            key = f"{name} {page}"
            screenshot(driver, f"dashboard-long-title-{name}-{'list' if page == '/' else 'incident'}")
            seen[key] = {
                "page": driver.execute_script("return document.documentElement.scrollWidth"),
                "window": driver.execute_script("return document.documentElement.clientWidth"),
            }
            if page == "/" and name == "desktop":
                commander = driver.find_element("css selector", "table.incidents td[data-label=Commander]")
                seen[key]["commander_right"] = commander.rect["x"] + commander.rect["width"]
    return seen


async def test_an_unbroken_title_wraps_on_the_list_and_the_incident(
    site: BotHarness, browser: Any, clock: FakeClock
) -> None:
    await site.declare(f"P2 {LONG} service:payments")
    seen = await asyncio.to_thread(_look, browser, site.url)
    for key, widths in seen.items():
        assert widths["page"] <= widths["window"], f"{key}: {widths['page']}px wide in a {widths['window']}px window"
    desktop = seen["desktop /"]
    assert desktop["commander_right"] <= desktop["window"], desktop


URL = "https://grafana.example.com/d/abcdefghijklmnopqrstuvwxyz0123456789/checkout-latency?orgId=1&var-service=payments"


def _cards(driver: Any, url: str) -> dict[str, list[int]]:
    driver.get(f"{url}/")  # signs in through the fake Slack
    driver.set_window_size(*SIZES["phone"])
    driver.get(f"{url}/incidents/INC-1")
    widths = {}
    for card in ("summary", "followups", "timeline"):
        driver.execute_script(f"document.getElementById('{card}').scrollIntoView()")
        screenshot(driver, f"dashboard-long-url-{card}-phone")
        widths[card] = driver.execute_script(
            f"const e = document.getElementById('{card}'); return [e.scrollWidth, e.clientWidth]"
        )
    return widths


async def test_a_long_address_in_a_follow_up_or_the_resolution_wraps_on_a_phone(site: BotHarness, browser: Any) -> None:
    """The card scrolled sideways, hiding the end of the text (and, for a follow-up, pushing it under the button)."""
    incident = await site.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    await site.command(f"action Alert on the latency shown at {URL}", channel=channel, user="U0BOB")
    await site.command(f"resolve Rolled back; the graph: {URL}", channel=channel, user="U0BOB")
    widths = await asyncio.to_thread(_cards, browser, site.url)
    for card, (scroll, client) in widths.items():
        assert scroll <= client, f"#{card} is {scroll}px wide inside {client}px"


async def test_a_code_block_in_the_resolution_scrolls_on_its_own_on_a_phone(site: BotHarness, browser: Any) -> None:
    """A code block keeps its lines as typed: a long one must scroll inside the block, not the whole card."""
    incident = await site.declare("P1 Checkout is down")
    code = f"{LONG}({LONG}) at line 42"
    await site.command(f"resolve Rolled back: ```{code}```", channel=incident.channel_id or "", user="U0BOB")
    widths = await asyncio.to_thread(_cards, browser, site.url)
    scroll, client = widths["summary"]
    assert scroll <= client, f"#summary is {scroll}px wide inside {client}px"
