"""Atlassian Statuspage through the outbox: throttling, outages, restarts; nothing is lost or reordered."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import httpx
import pytest

from bot.clock import FakeClock
from bot.statuspage import outbox, service
from bot.statuspage.atlassian import IncidentChange, Statuspage, StatuspageError
from bot.statuspage.outbox import marker_of
from tests.fakes.slack_api import FakeSlack
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness, until
from tests.statuspage.conftest import API_KEY, StartBot, page_of, public


async def _public_incident(bot: BotHarness) -> str:
    incident = await bot.declare("P1 service:api Payments fail")
    assert incident.channel_id
    return incident.channel_id


async def test_a_429_is_waited_out_and_the_update_goes_through(sbot: BotHarness, statuspage: FakeStatuspage) -> None:
    statuspage.fail_next(429, retry_after=1)
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    assert [(c.status, c.method) for c in statuspage.refused] == [(429, "POST")]
    assert [(c.method, c.body["incident"]["body"]) for c in statuspage.calls] == [("POST", "We are investigating.")]
    assert statuspage.calls[0].at - statuspage.refused[0].at >= 0.98
    assert not [m for m in sbot.fake.messages(channel) if "did not take" in m.text]
    async with sbot.deps.db.session() as session:
        [row] = await service.syncs(session, incident_id=1)
    assert row.sent_at is not None and row.attempts == 1
    assert statuspage.reads == []  # a first try creates without looking: nothing can be there yet


async def test_a_create_whose_answer_was_lost_is_found_on_retry_not_made_twice(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    statuspage.lose_next_answer()  # Statuspage creates the incident; the bot gets a 502
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    assert len(statuspage.incidents) == 1 and [c.method for c in statuspage.calls] == ["POST"]
    assert len([m for m in sbot.fake.messages(channel) if "did not take" in m.text]) == 1
    async with sbot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) is None

    clock.advance(timedelta(seconds=31))
    await page_of(sbot).sweep()  # the retry looks among the unresolved incidents first, and finds ours
    [(external, created)] = statuspage.incidents.items()
    assert [c.method for c in statuspage.calls] == ["POST"], "a second incident was created"
    assert [c.path for c in statuspage.reads] == ["/v1/pages/pg_test/incidents/unresolved"]
    assert [u["body"] for u in created.updates] == ["We are investigating."]  # the update is not repeated
    assert created.metadata == {"incident_bot": {"ref": marker_of(await sbot.incident(1))}}
    async with sbot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) == external
        [row] = await service.syncs(session, incident_id=1)
    assert row.sent_at is not None and row.attempts == 2
    assert [m for m in sbot.fake.messages(channel) if "up to date again" in m.text]

    await sbot.command("publish We found the cause.", channel=channel)
    await sbot.settle()
    assert [(c.method, c.path.rsplit("/", 1)[-1]) for c in statuspage.calls] == [
        ("POST", "incidents"),
        ("PATCH", external),
    ]
    assert len(statuspage.incidents) == 1


async def test_a_retry_that_finds_nothing_creates_the_incident(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    statuspage.fail_next(503)  # refused before anything was made
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    clock.advance(timedelta(seconds=31))
    await page_of(sbot).sweep()
    assert len(statuspage.reads) == 1 and [c.method for c in statuspage.calls] == ["POST"]
    assert len(statuspage.incidents) == 1


async def test_a_shutdown_lets_a_publish_in_flight_finish(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """SIGTERM while the scheduler's sweep was sending an update to Statuspage: the run was cancelled
    with the incident made there but not recorded here, the row left claimed for its lease."""
    statuspage.fail_next(503)  # the first try fails: the update waits in the outbox for the sweep
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    await until(lambda: not sbot.deps.background.tasks)  # the first try is over: only the scheduler sends now
    assert statuspage.incidents == {} and len(statuspage.refused) == 1
    clock.advance(timedelta(seconds=31))
    gate = statuspage.hold()
    page_of(sbot).wake_at(clock.now())  # the scheduler runs the sweep, as in production
    await until(lambda: statuspage.held, within=10)
    stopping = asyncio.create_task(page_of(sbot).stop())
    await asyncio.sleep(0)  # the stop has begun (its first step ran) before Statuspage answers
    gate.set()
    await asyncio.wait_for(stopping, 5)

    [(external, _)] = statuspage.incidents.items()
    async with sbot.deps.db.session() as session:
        [row] = await service.syncs(session, incident_id=1)
        assert await service.external_id(session, incident_id=1) == external
    assert row.sent_at is not None and row.attempts == 2


async def test_an_outage_is_told_once_retried_in_order_and_survives_a_restart(
    fake_slack: FakeSlack, statuspage: FakeStatuspage, clock: FakeClock, start_page_bot: StartBot
) -> None:
    statuspage.fail_next(500, times=100)
    async with start_page_bot() as bot:
        channel = await _public_incident(bot)
        await bot.command("publish major First public words.", channel=channel)
        await bot.command("publish Second public words.", channel=channel)
        told = [m.text for m in fake_slack.messages(channel) if "did not take" in m.text]
        assert len(told) == 1 and "nothing is lost" in told[0] and "retried in 30s" in told[0]
        # The second update waits behind the first: it was never sent ahead of it.
        assert statuspage.calls == [] and {c.body["incident"]["body"] for c in statuspage.refused} == {
            "First public words."
        }
        clock.advance(timedelta(seconds=31))
        await page_of(bot).sweep()  # still down: the back-off grows, the channel is not told again
        assert len([m for m in fake_slack.messages(channel) if "did not take" in m.text]) == 1
        async with bot.deps.db.session() as session:
            rows = await service.syncs(session, incident_id=1)
        assert [(r.sent_at, r.attempts) for r in rows] == [(None, 2), (None, 0)]
        kinds = [e.kind for e in await bot.timeline(1)]
        assert kinds.count("statuspage") == 1
    # Statuspage comes back while the bot is down; the next process sends both, in order.
    statuspage.recover()
    clock.advance(timedelta(minutes=2))
    async with start_page_bot() as bot:
        await bot.settle()
        assert [(c.method, c.body["incident"]["body"]) for c in statuspage.calls] == [
            ("POST", "First public words."),
            ("PATCH", "Second public words."),
        ]
        assert [m.text for m in fake_slack.messages(channel) if "up to date again" in m.text]
        async with bot.deps.db.session() as session:
            assert all(r.sent_at is not None for r in await service.syncs(session, incident_id=1))


async def test_the_client_sends_the_auth_header_and_envelope_and_paces_itself(statuspage: FakeStatuspage) -> None:
    change = IncidentChange(name="Outage", status="investigating", body="Looking", impact="minor", components={})
    async with httpx.AsyncClient() as http:
        wrong = Statuspage(http=http, base_url=statuspage.url, page_id="pg_test", api_key="not-the-key", retries=0)
        with pytest.raises(StatuspageError) as refused:
            await wrong.create_incident(change)
        assert refused.value.status == 401 and not refused.value.transient
        client = Statuspage(http=http, base_url=statuspage.url, page_id="pg_test", api_key=API_KEY)
        incident_id, first = await client.create_incident(change)
        added = [
            await client.update_incident(incident_id, IncidentChange("Outage", status, status, "minor", {}))
            for status in ("identified", "monitoring")
        ]
    assert [c.method for c in statuspage.calls] == ["POST", "PATCH", "PATCH"]
    # Each answer names the incident update it added: what a correction patches later.
    assert [first, *added] == [u["id"] for u in statuspage.incidents[incident_id].updates]
    assert [c.status for c in statuspage.refused] == [401]


async def test_the_fake_refuses_what_statuspage_refuses(statuspage: FakeStatuspage) -> None:
    url = f"{statuspage.url}/pages/pg_test/incidents"
    good = {"incident": {"name": "x", "status": "investigating", "impact_override": "minor"}}
    auth = {"Authorization": f"OAuth {API_KEY}"}
    cases = [
        ({"Authorization": f"Bearer {API_KEY}"}, good, 401),
        ({}, good, 401),
        (auth, good["incident"], 400),  # no envelope
        (auth, {"incident": {"name": "x", "status": "broken"}}, 422),
        (auth, {"incident": {"name": "x", "impact_override": "huge"}}, 422),
        (auth, {"incident": {"name": "x", "components": {"cmp_api": "down"}}}, 422),
        (auth, {"incident": {"name": "x", "components": {"cmp_nope": "major_outage"}}}, 422),
        (auth, {"incident": {"status": "investigating"}}, 422),  # no name
        (auth, {"incident": {"name": "x", "metadata": {"incident_bot": "INC-1"}}}, 422),  # values must be objects
    ]
    statuspage.min_interval = 0
    async with httpx.AsyncClient() as http:
        for headers, body, expected in cases:
            response = await http.post(url, json=body, headers=headers)
            assert response.status_code == expected, (headers, body, response.text)
        statuspage.min_interval = 1.0
        await asyncio.sleep(1.0)  # a second after the last refused call, which counted too
        first = await http.post(url, json=good, headers=auth)
        second = await http.post(url, json=good, headers=auth)
    assert first.status_code == 201 and second.status_code == 420


async def test_health_warns_when_an_update_waits_for_statuspage_too_long(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    statuspage.fail_next(503, times=100)
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    async with httpx.AsyncClient(base_url=sbot.url) as client:
        body = (await client.get("/health")).json()
        assert body["checks"]["statuspage:outbox"][0]["status"] == "pass"
        clock.advance(timedelta(minutes=11))
        response = await client.get("/health")
    check = response.json()["checks"]["statuspage:outbox"][0]
    assert response.status_code == 200 and check["status"] == "warn"  # a warning: the bot itself works on
    assert "has waited for Statuspage since" in check["output"]


async def test_a_second_incident_on_a_component_neither_lowers_nor_clears_the_first_ones_outage(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    """Statuspage's components are the page's, not one incident's: each update sets them to the worst
    that any open public incident says of them, as the bot's own page shows."""
    first = await sbot.declare("P1 service:api Payments fail")
    await sbot.command("publish critical Payments are failing.", channel=first.channel_id or "")
    second = await sbot.declare("P3 service:api Receipts are slow")
    await sbot.command("publish minor Receipts arrive late.", channel=second.channel_id or "")
    await sbot.settle()
    assert len(statuspage.incidents) == 2
    assert statuspage.components["cmp_api"] == "major_outage", "the minor incident lowered the outage"

    await sbot.command("resolve receipts caught up", channel=second.channel_id or "")
    await sbot.settle()
    assert statuspage.calls[-1].body["incident"]["status"] == "resolved"
    assert statuspage.components["cmp_api"] == "major_outage", "resolving the minor incident cleared the outage"
    summary, _, _ = await public(sbot)
    assert {c["name"]: c["status"] for c in summary["components"]}["Checkout API"] == "major_outage"

    await sbot.command("resolve payments back", channel=first.channel_id or "")
    await sbot.settle()
    assert statuspage.components["cmp_api"] == "operational" and statuspage.refused == []


async def test_a_replica_whose_claim_ran_out_does_not_say_statuspage_caught_up_again(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """Statuspage was slow past the lease: another replica took the row over, sent it and said so. The first
    one's answer comes back after that: the row is no longer its own to finish, nor to announce."""
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    await sbot.settle()
    statuspage.fail_next(503)
    await sbot.command("publish We found the cause.", channel=channel)
    await sbot.settle()
    async with sbot.deps.db.session() as session:
        row = (await service.syncs(session, incident_id=1))[-1]
    assert row.sent_at is None and row.told_failure
    clock.advance(timedelta(seconds=31))
    gate = statuspage.hold()
    stalled = asyncio.create_task(outbox.sync_one(sbot.deps, row_id=row.id or 0))
    await until(lambda: statuspage.held)
    clock.advance(outbox.SYNC_LEASE + timedelta(seconds=1))
    assert await _sync_on_the_other_replica(sbot, statuspage, row_id=row.id or 0) is True
    gate.set()
    await stalled
    assert len([m for m in sbot.fake.messages(channel) if "up to date again" in m.text]) == 1
    assert len([e for e in await sbot.timeline(1) if e.text == "Statuspage is up to date again"]) == 1


async def test_a_replica_whose_claim_ran_out_does_not_report_a_failure_of_what_the_taker_sent(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """The first replica's answer, lost after the other replica took the row over and sent it, is no failure
    to tell the channel of: the row is not its own to retry any more."""
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    await sbot.settle()
    gate = statuspage.hold()
    await sbot.command("publish We found the cause.", channel=channel, settle=False)  # its send waits there
    await until(lambda: statuspage.held)
    async with sbot.deps.db.session() as session:
        row = (await service.syncs(session, incident_id=1))[-1]
    clock.advance(outbox.SYNC_LEASE + timedelta(seconds=1))
    assert await _sync_on_the_other_replica(sbot, statuspage, row_id=row.id or 0) is True
    statuspage.lose_next_answer()  # the first replica's answer, when it comes, is a gateway's 502
    gate.set()
    await sbot.settle()
    assert not [m for m in sbot.fake.messages(channel) if "did not take" in m.text]
    assert not [e for e in await sbot.timeline(1) if e.text.startswith("Statuspage sync failed")]
    async with sbot.deps.db.session() as session:
        [*_, done] = await service.syncs(session, incident_id=1)
    assert done.sent_at is not None and not done.told_failure


async def _sync_on_the_other_replica(sbot: BotHarness, statuspage: FakeStatuspage, *, row_id: int) -> bool:
    """`outbox.sync_one` as another replica runs it: with its own client (one request at a time is per process)."""
    page = page_of(sbot)
    mine = page.statuspage
    page.statuspage = Statuspage(http=sbot.deps.http, base_url=statuspage.url, page_id="pg_test", api_key=API_KEY)
    try:
        return await outbox.sync_one(sbot.deps, row_id=row_id)
    finally:
        page.statuspage = mine


async def test_a_refused_api_key_is_told_with_the_setting_to_check_and_retried(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    """A revoked or mistyped key: the channel hears which environment variable holds it, not only Statuspage's
    "Could not authenticate"; once it is replaced the update goes out."""
    statuspage.fail_next(401)
    channel = await _public_incident(sbot)
    await sbot.command("publish major We are investigating.", channel=channel)
    [told] = [m.text for m in sbot.fake.messages(channel) if "did not take" in m.text]
    assert "401" in told and "STATUSPAGE_API_KEY" in told
    clock.advance(timedelta(seconds=31))
    await page_of(sbot).sweep()
    assert [c.method for c in statuspage.calls] == ["POST"] and len(statuspage.incidents) == 1
