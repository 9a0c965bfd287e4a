"""A dashboard form submitted after the session ended (expired, signed out elsewhere) leads to Slack's
sign-in and back, as a link does. Every page's `form-action 'self'` also governs the redirects that
follow a form's submission, so a redirect chain from the form to Slack would be blocked by the browser
and the Filter button would silently do nothing."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from selenium.webdriver.common.by import By

from bot.clock import FakeClock
from tests.browser import screenshot
from tests.harness import BotHarness
from tests.web.conftest import Browser
from tests.web.test_browser import _click

FROM_A_DASHBOARD_PAGE = {"Sec-Fetch-Site": "same-origin", "Sec-Fetch-Mode": "navigate"}


async def test_from_a_dashboard_page_an_ended_session_answers_with_a_page_not_a_redirect_chain(
    site: BotHarness, alice: Browser, clock: FakeClock
) -> None:
    await site.declare("P1 Checkout is down service:payments")
    clock.advance(timedelta(hours=13))

    filtered = await alice.get("/?q=checkout&status=open", headers=FROM_A_DASHBOARD_PAGE)
    target = "/login?next=%2F%3Fq%3Dcheckout%26status%3Dopen"
    assert filtered.status_code == 401 and "Checkout" not in filtered.text
    assert f'<meta http-equiv="refresh" content="0; url={target}">' in filtered.text
    assert f'href="{target}"' in filtered.text and "Sign in with Slack" in filtered.text

    # From Slack, a bookmark or the address bar: straight to the sign-in, as before.
    linked = await alice.get("/?q=checkout", headers={"Sec-Fetch-Site": "cross-site"})
    assert linked.status_code == 303 and linked.headers["location"] == "/login?next=%2F%3Fq%3Dcheckout"

    back = await alice.sign_in("U0ALICE", next_path="/?q=checkout&status=open")
    assert back.headers["location"] == "/?q=checkout&status=open"


def _filter_after_the_session_ended(driver: Any, url: str, expire: Any) -> None:
    driver.get(f"{url}/")
    assert driver.find_element(By.CSS_SELECTOR, ".me").text == "alice"
    assert len(driver.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")) == 2
    expire()
    driver.find_element(By.NAME, "q").send_keys("checkout")
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form.filters button[type=submit]"))
    rows = driver.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")
    assert driver.current_url.startswith(f"{url}/?q=checkout"), driver.current_url
    assert len(rows) == 1 and "Checkout is down" in rows[0].text
    screenshot(driver, "dashboard-filter-after-the-session-ended")
    logs = [entry["message"] for entry in driver.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m], logs


async def test_the_filter_form_after_the_session_ended_signs_in_again_in_a_real_browser(
    site: BotHarness, browser: Any, clock: FakeClock
) -> None:
    await site.declare("P2 Search is slow service:search")
    await site.declare("P1 Checkout is down service:payments")

    def expire() -> None:
        clock.advance(timedelta(hours=13))

    await asyncio.to_thread(_filter_after_the_session_ended, browser, site.url, expire)
