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
