"""The page's change stamp (summary.json's `updated_at`s, each page's Last-Modified) is a fact of the
database: replicas behind one address and a restarted process tell pollers the same time for the same
page, and it moves only when what the page shows changes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import httpx
import pytest

from bot.clock import FakeClock
from bot.incidents.models import Incident
from bot.statuspage import health_days
from bot.statuspage.models import ComponentStatus
from tests.harness import BotHarness
from tests.statuspage.conftest import Health, StartBot, page_of, public

SUMMARY = "/status-page/api/v2/summary.json"
STALE = timedelta(minutes=3)  # three missed probes of the default `probe_every` (a minute)
PAGES = ("/status-page", SUMMARY, "/status-page/history.atom")


@pytest.fixture
def clock() -> FakeClock:
    """Today at noon: no test here crosses midnight, when the HTML page (its new day's bar) changes too."""
    return FakeClock(datetime.now(UTC).replace(hour=12, minute=0, second=0, microsecond=0))


@dataclass(frozen=True)
class Served:
    updated_at: str
    last_modified: dict[str, str]  # per page
    etag: str  # summary.json's

    @property
    def summary_modified(self) -> str:
        return self.last_modified[SUMMARY]


async def served(bot: BotHarness) -> Served:
    async with httpx.AsyncClient(base_url=bot.url) as client:
        responses = {path: await client.get(path) for path in PAGES}
    for response in responses.values():
        assert response.status_code == 200, response.text
    summary = responses[SUMMARY]
    return Served(
        updated_at=summary.json()["page"]["updated_at"],
        last_modified={path: r.headers["Last-Modified"] for path, r in responses.items()},
        etag=summary.headers["ETag"],
    )


async def not_modified_since(bot: BotHarness, last_modified: str) -> bool:
    async with httpx.AsyncClient(base_url=bot.url) as client:
        response = await client.get(SUMMARY, headers={"If-Modified-Since": last_modified})
    return response.status_code == 304


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def http_date(at: datetime) -> str:
    return format_datetime(at.astimezone(UTC).replace(microsecond=0), usegmt=True)


async def probe(bot: BotHarness) -> None:
    await page_of(bot).probe()
    await bot.settle()


async def test_two_replicas_and_a_restart_serve_the_same_stamp(start_page_bot: StartBot, clock: FakeClock) -> None:
    """Behind a load balancer a poller reaches either replica: a stamp of each process's own would answer
    it "changed" (and a 200) every time it lands on the other one, and so would a restart."""
    async with start_page_bot() as first:
        await first.settle()
        incident = await first.declare("P1 service:api Payments fail")
        clock.advance(timedelta(seconds=5))
        published_at = clock.now()
        await first.command("publish major Some payments fail.", channel=incident.channel_id or "")
        await first.settle()
        clock.advance(timedelta(seconds=40))
        async with start_page_bot() as second:
            await second.settle()
            clock.advance(timedelta(seconds=40))
            await page_of(first).refresh()
            one, other = await served(first), await served(second)
            assert one == other
            assert one.updated_at == iso(published_at)
            assert one.summary_modified == http_date(published_at)
    clock.advance(timedelta(seconds=50))
    async with start_page_bot() as restarted:
        await restarted.settle()
        again = await served(restarted)
        assert again.updated_at == one.updated_at and again.etag == one.etag
        assert again.last_modified[SUMMARY] == one.summary_modified
        assert again.last_modified["/status-page/history.atom"] == one.last_modified["/status-page/history.atom"]
        assert await not_modified_since(restarted, one.summary_modified)


async def test_only_a_probe_that_changes_a_status_moves_the_stamp(
    sbot: BotHarness, clock: FakeClock, health: Health
) -> None:
    """`last_at` moves with every probe; the page's stamp only when a component's status changes."""
    await sbot.settle()
    before = await served(sbot)
    clock.advance(timedelta(seconds=60))
    await probe(sbot)
    same = await served(sbot)
    assert same.updated_at == before.updated_at and same.summary_modified == before.summary_modified
    assert await not_modified_since(sbot, before.summary_modified)

    clock.advance(timedelta(seconds=60))
    health.states["api"] = "down"
    changed_at = clock.now()
    await probe(sbot)
    changed = await served(sbot)
    assert changed.updated_at == iso(changed_at) != before.updated_at
    assert changed.summary_modified == http_date(changed_at)
    assert not await not_modified_since(sbot, before.summary_modified)

    clock.advance(timedelta(seconds=60))
    await probe(sbot)  # down again: nothing new
    assert (await served(sbot)).updated_at == iso(changed_at)


async def test_a_stale_component_moves_the_stamp_once_when_it_went_stale(
    sbot: BotHarness, clock: FakeClock, health: Health
) -> None:
    """A component nobody could probe for a while is no longer shown as probed: the page changed at that
    moment (last probe + `stale_after`), whenever a replica notices it, and not again."""
    page = page_of(sbot)
    assert page.config.probe_every * 3 == STALE
    await sbot.settle()
    health.states["api"] = "down"
    clock.advance(timedelta(seconds=10))
    last_probe = clock.now()
    await probe(sbot)
    assert (await served(sbot)).updated_at == iso(last_probe)

    clock.advance(STALE - timedelta(seconds=10))
    await page.refresh()
    assert (await served(sbot)).updated_at == iso(last_probe)

    went_stale = last_probe + STALE
    for _ in range(3):
        clock.advance(timedelta(seconds=37))
        await page.refresh()
        stale = await served(sbot)
        assert stale.updated_at == iso(went_stale)
        assert stale.summary_modified == http_date(went_stale)

    clock.advance(timedelta(seconds=5))
    back = clock.now()
    await probe(sbot)  # still down, but shown again
    assert (await served(sbot)).updated_at == iso(back)


async def test_a_stale_probe_that_showed_nothing_leaves_the_stamp(
    sbot: BotHarness, clock: FakeClock, health: Health
) -> None:
    """An "operational" probe going stale leaves the component shown operational, and so does the next
    "operational" probe when probing resumes (e.g. after a deploy): nothing on the page changed, so pollers
    keep their 304 and `updated_at` stays."""
    await sbot.settle()
    before = await served(sbot)
    clock.advance(STALE + timedelta(seconds=30))
    await page_of(sbot).refresh()
    for _ in range(2):
        after = await served(sbot)
        assert after.updated_at == before.updated_at and after.etag == before.etag
        assert after.summary_modified == before.summary_modified
        assert await not_modified_since(sbot, before.summary_modified)
        clock.advance(timedelta(seconds=30))
        await probe(sbot)  # probing resumes, all operational


async def test_a_withdrawal_dates_the_page_on_every_replica(start_page_bot: StartBot, clock: FakeClock) -> None:
    """A withdrawn incident leaves the page: the stamp moves to the withdrawal (never back to an older
    change), on the replica that withdrew it and on one that only reads the rows afterwards."""
    async with start_page_bot() as first:
        await first.settle()
        incident = await first.declare("P1 service:api Payments fail")
        channel = incident.channel_id or ""
        await first.command("publish critical Checkout is down for everyone.", channel=channel)
        clock.advance(timedelta(seconds=30))
        withdrawn_at = clock.now()
        await first.command("unpublish", channel=channel, user="U0BOB")
        await first.settle()
        clock.advance(timedelta(seconds=40))
        async with start_page_bot() as second:
            await second.settle()
            await page_of(first).refresh()  # the sweep's: the other replica's probe counted since
            one, other = await served(first), await served(second)
    assert one == other and one.updated_at == iso(withdrawn_at)


async def test_an_incident_leaving_the_history_dates_the_page(sbot: BotHarness, clock: FakeClock) -> None:
    """90 days after its resolution an incident leaves the history, the feed and the page: a reader who saw
    it there is told the page changed then, not the older date of what is left (or 304 for a new page)."""
    await sbot.settle()
    incident = await sbot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await sbot.command("publish major Some payments fail.", channel=channel)
    clock.advance(timedelta(minutes=10))
    await sbot.command("resolve Card gateway restarted.", channel=channel)
    await sbot.settle()
    async with sbot.deps.db.session() as session:
        row = await session.get(Incident, incident.id)
        assert row is not None and row.resolved_at is not None
    _, html, atom = await public(sbot)
    assert "Some payments fail" in html and "Some payments fail" in atom
    seen = await served(sbot)

    clock.advance(timedelta(days=90, minutes=1))
    await page_of(sbot).refresh()
    _, html, atom = await public(sbot)
    assert "Some payments fail" not in html and "Some payments fail" not in atom
    left_at = row.resolved_at + timedelta(days=90)
    later = await served(sbot)
    assert later.updated_at == iso(left_at)
    assert later.summary_modified == later.last_modified["/status-page/history.atom"] == http_date(left_at)
    assert not await not_modified_since(sbot, seen.summary_modified)


def empty_page(title: str = "Acme status") -> dict[str, Any]:
    """A page nothing can date: no health endpoint to probe, nothing published yet."""
    return {"services": {"billing": {}}, "status_page": {"title": title, "components": {"Billing": ["billing"]}}}


async def test_an_empty_page_is_dated_by_its_first_build_everywhere(start_page_bot: StartBot, clock: FakeClock) -> None:
    """Nothing published, nothing probed: the page still tells a real date, when it was first served as it is
    configured, the same on every replica and after a restart; a new title dates it from its deploy."""
    first_built = clock.now()
    async with start_page_bot(empty_page()) as first:
        await first.settle()
        clock.advance(timedelta(seconds=40))
        async with start_page_bot(empty_page()) as second:
            await second.settle()
            one, other = await served(first), await served(second)
            _, html, _ = await public(second)
    assert one == other and one.updated_at == iso(first_built)
    assert set(one.last_modified.values()) == {http_date(first_built)}
    assert f"Updated {first_built:%d %b %Y, %H:%M} UTC" in html

    clock.advance(timedelta(minutes=5))
    async with start_page_bot(empty_page()) as restarted:
        await restarted.settle()
        assert await served(restarted) == one
        assert await not_modified_since(restarted, one.summary_modified)

    clock.advance(timedelta(minutes=5))
    retitled = clock.now()
    async with start_page_bot(empty_page("Acme")) as renamed:
        await renamed.settle()
        assert (await served(renamed)).updated_at == iso(retitled)
        assert not await not_modified_since(renamed, one.summary_modified)


async def test_a_new_days_first_probe_keeps_when_the_status_changed(sbot: BotHarness) -> None:
    """Probes are counted per UTC day: the day's first row carries the status's change time over when the
    status is the one the day before ended with, and takes its own time when it is not."""
    late = datetime.now(UTC).replace(hour=23, minute=59, second=0, microsecond=0) - timedelta(days=3)
    steps = [
        (late, ComponentStatus.MAJOR, late),
        (late + timedelta(minutes=1), ComponentStatus.MAJOR, late),  # the next day, same status
        (late + timedelta(days=1, minutes=1), ComponentStatus.OPERATIONAL, late + timedelta(days=1, minutes=1)),
        (late + timedelta(days=1, minutes=3), ComponentStatus.OPERATIONAL, late + timedelta(days=1, minutes=1)),
    ]
    for at, status, changed_at in steps:
        async with sbot.deps.db.session() as session:
            await health_days.record_probe(session, component="Search", status=status, at=at, stale_after=STALE * 10**3)
            days = await health_days.component_days(session, since=late.date())
        [row] = [d for d in days if d.component == "Search" and d.day == at.date()]
        assert (row.last_at, row.changed_at) == (at, changed_at)
