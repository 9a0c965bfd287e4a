"""summary.json field by field against Atlassian Statuspage's documented public format, not only its keys."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from xml.etree import ElementTree

import httpx
import pytest

from bot.clock import FakeClock
from bot.statuspage.snapshot import PAGE_ID, page_id
from tests.harness import BotHarness
from tests.statuspage.conftest import page_of, public

SITE = "https://bot.acme.example"
ATOM = "{http://www.w3.org/2005/Atom}"
SUMMARY = "/status-page/api/v2/summary.json"


def _date_time(value: object) -> datetime:
    assert isinstance(value, str), f"{value!r} is not an ISO 8601 date-time string"
    return datetime.fromisoformat(value)


@pytest.fixture
def page_settings() -> dict[str, Any]:
    return {"public_url": SITE}


async def test_summary_json_has_statuspages_types_and_absolute_links(sbot: BotHarness) -> None:
    """Statuspage documents `page.url` as a URI, and each component's `created_at` (a date-time) and
    `page_id` as required; an incident's `components` are component objects, and each affected
    component says its `old_status` as well as its `new_status`."""
    incident = await sbot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await sbot.command("publish minor Some payments fail.", channel=channel)
    await sbot.command("publish critical No payment goes through.", channel=channel)
    summary, _, atom = await public(sbot)

    page = summary["page"]
    assert page["url"] == f"{SITE}/status-page"
    for component in summary["components"]:
        assert component["page_id"] == page["id"]
        assert _date_time(component["created_at"]) <= _date_time(component["updated_at"])
    [shown] = summary["incidents"]
    assert shown["shortlink"] == f"{SITE}/status-page#incident-{shown['id']}"
    [component] = shown["components"]
    assert component["name"] == "Checkout API" and component["status"] == "major_outage"
    assert component["page_id"] == page["id"] and _date_time(component["created_at"])
    latest, first = shown["incident_updates"]
    assert latest["affected_components"] == [
        {
            "code": component["id"],
            "name": "Checkout API",
            "old_status": "degraded_performance",
            "new_status": "major_outage",
        }
    ]
    assert first["affected_components"][0]["old_status"] == "operational"

    links = {link.get("rel"): link.get("href") for link in ElementTree.fromstring(atom).findall(f"{ATOM}link")}
    assert links == {"alternate": f"{SITE}/status-page", "self": f"{SITE}/status-page/history.atom"}


async def test_ids_are_minted_under_the_pages_own_address(sbot: BotHarness) -> None:
    """Feed readers de-duplicate entries by id: two installations' pages with the same ids would hide
    one page's updates from someone who follows both."""
    incident = await sbot.declare("P1 service:api Payments fail")
    await sbot.command("publish minor Some payments fail.", channel=incident.channel_id or "")
    summary, _, atom = await public(sbot)

    feed = ElementTree.fromstring(atom)
    ids = [feed.findtext(f"{ATOM}id") or ""] + [e.findtext(f"{ATOM}id") or "" for e in feed.findall(f"{ATOM}entry")]
    assert len(ids) == 2 and all(i.startswith("tag:bot.acme.example,2026:status-page") for i in ids), ids
    assert summary["page"]["id"] == page_id(SITE) != PAGE_ID != page_id("https://status.other.example")


@pytest.mark.parametrize(
    ("accept", "gzipped"),
    [
        ("gzip, deflate, br", True),
        ("br;q=1.0, gzip;q=0.8, *;q=0.1", True),
        ("gzip;q=0", False),
        ("identity, gzip;q=0.0", False),
        ("deflate", False),
    ],
)
async def test_gzip_only_for_a_client_that_takes_it(sbot: BotHarness, accept: str, gzipped: bool) -> None:
    async with httpx.AsyncClient(base_url=sbot.url) as client:
        for path in ("/status-page", "/status-page/api/v2/summary.json", "/status-page/history.atom"):
            response = await client.get(path, headers={"Accept-Encoding": accept})
            assert response.status_code == 200
            assert ("Content-Encoding" in response.headers) is gzipped, (path, accept)


async def test_summary_json_is_unchanged_by_a_rebuild_that_changes_nothing(sbot: BotHarness, clock: FakeClock) -> None:
    """Its `updated_at`s say when the page last changed, as Statuspage's do: a poller keeps getting a 304
    across the 30 s rebuilds, and sees a new time only when something public changed."""
    incident = await sbot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await sbot.command("publish minor Some payments fail.", channel=channel)
    async with httpx.AsyncClient(base_url=sbot.url) as client:
        first = await client.get(SUMMARY)
        published = first.json()["page"]["updated_at"]
        clock.advance(timedelta(seconds=31))
        await page_of(sbot).refresh()
        again = await client.get(SUMMARY, headers={"If-None-Match": first.headers["ETag"]})
        assert again.status_code == 304
        assert (await client.get(SUMMARY)).json()["page"]["updated_at"] == published

        clock.advance(timedelta(seconds=31))
        await sbot.command("publish major No payment goes through.", channel=channel)
        changed = await client.get(SUMMARY, headers={"If-None-Match": first.headers["ETag"]})
    assert changed.status_code == 200
    assert _date_time(changed.json()["page"]["updated_at"]) > _date_time(published)
    assert {c["updated_at"] for c in changed.json()["components"]} == {changed.json()["page"]["updated_at"]}
