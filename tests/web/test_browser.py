"""The dashboard in a real browser (Debian's Chromium): sign in with Slack through the fake's
authorize page, then the list, an incident and its timeline, a post-mortem edit, stats and on-call,
at desktop and phone widths. Screenshots land in tests/artifacts/screenshots/dashboard-*.png."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from selenium.webdriver.common.by import By

from bot.clock import FakeClock
from tests.browser import screenshot
from tests.followups.conftest import Tracker, tracker  # noqa: F401  (the tracker fakes' fixture)
from tests.harness import BotHarness

PHONE = (390, 844)
DESKTOP = (1280, 900)
ONCALL = {
    "oncall": {
        "timezone": "Europe/London",
        "rotation": {"period": "weekly", "handoff": "monday 09:00", "users": ["U0ALICE", "U0BOB", "U0CAROL"]},
        "overrides": [{"user": "U0LEAD", "start": "2026-11-25T09:00:00Z", "end": "2026-11-26T09:00:00Z"}],
    }
}


async def _seed(site: BotHarness, clock: FakeClock) -> str:
    clock.advance(timedelta(days=-20))
    await site.declare("P3 Search results are stale service:search")
    await site.command("ack", channel=(await site.incident(1)).channel_id or "", user="U0CAROL")
    clock.advance(timedelta(days=8, hours=3))
    await site.declare("P2 Card payments time out for EU customers service:payments")
    clock.advance(timedelta(days=11, hours=20))
    await site.declare("P1 Checkout is down service:payments")
    channel = (await site.incident(3)).channel_id or ""
    steps: list[tuple[int, str, str]] = [
        (0, "started -12m", "U0ALICE"),
        (3, "ack", "U0BOB"),
        (1, "role commander <@U0BOB>", "U0ALICE"),
        (2, "note Error rate at 35%, mostly /checkout", "U0BOB"),
        (6, "update monitoring Rolled back; error rate falling", "U0BOB"),
        (1, "action Alert on connection pool saturation", "U0BOB"),
        (9, "resolve Rolled back deploy 4711", "U0BOB"),
    ]
    for minutes, command, user in steps:
        clock.advance(timedelta(minutes=minutes))
        if command.startswith("update"):
            await site.event(site.fake.user_says(channel, "U0CAROL", "Rolling back deploy 4711 now"))
        await site.command(command, channel=channel, user=user)
    return channel


def _shots(driver: Any, name: str) -> None:
    driver.set_window_size(*DESKTOP)
    screenshot(driver, f"dashboard-{name}-desktop")
    driver.set_window_size(*PHONE)
    screenshot(driver, f"dashboard-{name}-phone")
    # Nothing spills sideways on a phone: the page is no wider than the screen.
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"{name} is {width}px wide on a {PHONE[0]}px phone"
    driver.set_window_size(*DESKTOP)


def _drive(driver: Any, url: str) -> None:
    """Selenium blocks, and the bot and the fake Slack serve on the test's event loop: this runs in a thread."""
    # Sign in: the dashboard sends the browser to (fake) Slack, which sends it back signed in.
    driver.get(f"{url}/")
    assert driver.current_url == f"{url}/"
    assert driver.find_element(By.CSS_SELECTOR, ".me").text == "alice"

    # The list
    rows = driver.find_elements(By.CSS_SELECTOR, "table.incidents tbody tr")
    assert len(rows) == 3
    _shots(driver, "list")

    # An incident and its timeline
    _click(driver, driver.find_element(By.PARTIAL_LINK_TEXT, "Checkout is down"))
    assert driver.current_url.endswith("/incidents/INC-3")
    timeline = driver.find_element(By.ID, "timeline").text
    assert "Rolling back deploy 4711 now" in timeline and "Error rate at 35%" in timeline
    assert driver.find_elements(By.CSS_SELECTOR, "#timeline li.key")
    metrics = driver.find_element(By.ID, "metrics").text
    assert "Time to detect\n12m 00s" in metrics and "(3m 00s after declaration) by @bob" in metrics
    _shots(driver, "incident")
    driver.execute_script("document.getElementById('timeline').scrollIntoView()")
    screenshot(driver, "dashboard-timeline-desktop")
    driver.set_window_size(*PHONE)
    driver.execute_script("document.getElementById('timeline').scrollIntoView()")
    screenshot(driver, "dashboard-timeline-phone")
    driver.execute_script("document.getElementById('followups').scrollIntoView()")
    screenshot(driver, "dashboard-followups-phone")
    driver.set_window_size(*DESKTOP)

    # Edit a post-mortem section
    _click(driver, driver.find_element(By.LINK_TEXT, "Post-mortem"))
    box = driver.find_element(By.ID, "s-root_cause")
    box.send_keys("A deploy halved the connection pool size.\nNobody alerted on saturation.")
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form.sections button[type=submit]"))
    assert "saved=1" in driver.current_url
    written = driver.find_element(By.ID, "written-root_cause").text
    assert "A deploy halved the connection pool size." in written and "Nobody alerted" in written
    _shots(driver, "postmortem-saved")
    driver.execute_script("window.scrollTo(0, 0)")
    _shots(driver, "postmortem")

    # Stats and on-call
    _click(driver, driver.find_element(By.LINK_TEXT, "Stats"))
    assert len(driver.find_elements(By.CSS_SELECTOR, "svg.chart")) == 3
    _shots(driver, "stats")
    _click(driver, driver.find_element(By.LINK_TEXT, "On-call"))
    assert "The next four weeks" in driver.find_element(By.TAG_NAME, "main").text
    _shots(driver, "oncall")

    # Nothing on any page was blocked by the Content-Security-Policy (no inline style or script).
    logs = [entry["message"] for entry in driver.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m], logs

    # Sign out (a form with the CSRF token)
    _click(driver, driver.find_element(By.CSS_SELECTOR, "form.signout button"))
    assert "You are signed out" in driver.find_element(By.TAG_NAME, "main").text
    _shots(driver, "signed-out")


@pytest.mark.parametrize("bot_config", [ONCALL])
async def test_the_dashboard_in_a_real_browser(site: BotHarness, browser: Any, clock: FakeClock) -> None:
    await _seed(site, clock)
    await asyncio.to_thread(_drive, browser, site.url)
    assert site.fake.calls_to("openid.connect.token")
    events = [e for e in await site.timeline(3) if e.kind == "postmortem" and e.data.get("section") == "root_cause"]
    assert [e.actor for e in events] == ["U0ALICE"]


def _drive_off(driver: Any, url: str) -> None:
    driver.get(f"{url}/")
    text = driver.find_element(By.TAG_NAME, "main").text
    assert "The dashboard is not enabled" in text and "SLACK_OIDC_CLIENT_ID" in text
    assert "Checkout" not in driver.page_source
    _shots(driver, "off")


async def test_without_the_settings_the_browser_shows_how_to_enable_it(bot: BotHarness, browser: Any) -> None:
    await bot.declare("P1 Checkout is down")
    await asyncio.to_thread(_drive_off, browser, bot.url)


@pytest.fixture
def bot_config(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The tracker's fake as issue_tracker: for the tests that ask for one; else no bot.yml."""
    if "tracker" in request.fixturenames:
        return {"issue_tracker": request.getfixturevalue("tracker").config}
    return {}


def _followup_shots(driver: Any, name: str) -> None:
    for size, label in ((DESKTOP, "desktop"), (PHONE, "phone")):
        driver.set_window_size(*size)
        driver.execute_script("document.getElementById('followups').scrollIntoView()")
        screenshot(driver, f"dashboard-{name}-{label}")
    width = driver.execute_script("return document.documentElement.scrollWidth")
    assert width <= PHONE[0], f"{name} is {width}px wide on a {PHONE[0]}px phone"
    driver.set_window_size(*DESKTOP)


def _click(driver: Any, element: Any) -> None:
    """Click, then wait until the browser has left the page: a click may return before the next page is loaded."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.support.ui import WebDriverWait

    page = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def left(_: Any) -> bool:
        try:
            page.is_enabled()
        except WebDriverException:
            # Stale; or, mid-navigation, Chrome's "node does not belong to the document", which
            # Selenium's staleness_of does not count as stale (the test failed on it about 1 run in 4).
            return True
        return False

    WebDriverWait(driver, 15).until(left)
    WebDriverWait(driver, 15).until(lambda d: d.execute_script("return document.readyState") == "complete")


def _wait_for(driver: Any, by: str, selector: str) -> Any:
    from selenium.webdriver.support import expected_conditions
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, 15).until(expected_conditions.presence_of_element_located((by, selector)))


def _drive_followup_issue(driver: Any, url: str, tracked: Tracker) -> str:
    """Create issue on a follow-up, in the browser: refused once (told on the page), then the link."""
    driver.get(f"{url}/incidents/INC-1")
    item = driver.find_element(By.CSS_SELECTOR, "#followups li")
    assert not item.find_elements(By.CSS_SELECTOR, "a.issue")
    _followup_shots(driver, "followup-create")
    tracked.fake.rate_limit_next(600)
    _click(driver, item.find_element(By.XPATH, ".//button[text()='Create issue']"))
    # A form's submit may return before the next page is there (seen on a loaded machine): wait for it.
    problem = _wait_for(driver, By.CSS_SELECTOR, "#followup-1 .problem").text
    assert "Could not create the issue" in problem and "try again in" in problem
    _followup_shots(driver, "followup-refused")
    _click(driver, driver.find_element(By.XPATH, "//li[@id='followup-1']//button[text()='Create issue']"))
    link = _wait_for(driver, By.CSS_SELECTOR, "#followup-1 a.issue")
    assert driver.current_url.endswith("/incidents/INC-1#followup-1")
    item = driver.find_element(By.ID, "followup-1")
    assert link.text == "issue #1" and not item.find_elements(By.XPATH, ".//button[text()='Create issue']")
    _followup_shots(driver, "followup-issue")
    logs = [entry["message"] for entry in driver.get_log("browser")]
    assert not [m for m in logs if "Content Security Policy" in m], logs
    return str(link.get_attribute("href"))


@pytest.mark.parametrize("tracker", ["github"], indirect=True)
async def test_a_follow_up_gets_its_issue_in_a_real_browser(
    site: BotHarness,
    browser: Any,
    tracker: Tracker,  # noqa: F811
) -> None:
    incident = await site.declare("P1 Checkout is down service:payments")
    await site.command("action Alert on connection pool saturation <@U0BOB>", channel=incident.channel_id or "")
    href = await asyncio.to_thread(_drive_followup_issue, browser, site.url, tracker)
    assert href == "https://github.com/acme/api/issues/1" and len(tracker.fake.issues) == 1
