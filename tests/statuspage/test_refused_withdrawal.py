"""A withdrawal Statuspage keeps refusing to delete (not a 404: that counts as deleted) is tried a few times,
then given up where people see it: the channel, the timeline and /health. The incident's later rows go out."""

from __future__ import annotations

from datetime import timedelta

import httpx

from bot.clock import FakeClock
from bot.statuspage import service
from bot.statuspage.models import SyncAction
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import page_of

REFUSED = "refused to delete"


async def test_a_refused_delete_is_given_up_told_and_warned_and_blocks_nothing(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command("publish critical Checkout is down for everyone.", channel=channel)
    await bot.settle()
    statuspage.refuse_deletes(403)
    await bot.command("unpublish", channel=channel)
    await bot.settle()
    for wait in (31, 61):  # the back-off: 30 s, then a minute
        clock.advance(timedelta(seconds=wait))
        await page_of(bot).sweep()
    assert [(c.method, c.status) for c in statuspage.refused] == [("DELETE", 403)] * 3

    async with bot.deps.db.session() as session:
        rows = await service.syncs(session, incident_id=incident.id or 0)
        assert await service.external_id(session, incident_id=incident.id or 0) is None
    [withdrawal] = [r for r in rows if r.action == SyncAction.WITHDRAW]
    assert withdrawal.cancelled_at is not None and (withdrawal.cancel_reason or "").startswith("gave up: ")
    [told] = [m.text for m in bot.fake.messages(channel) if REFUSED in m.text]
    assert "403" in told and "delete it there by hand" in told
    assert any(REFUSED in e.text for e in await bot.timeline(incident.id or 0) if e.kind == "statuspage")

    clock.advance(timedelta(minutes=15))  # tried no more
    await page_of(bot).sweep()
    assert len(statuspage.refused) == 3
    async with httpx.AsyncClient(base_url=bot.url) as client:
        response = await client.get("/health")
        check = response.json()["checks"]["statuspage:outbox"][0]
        assert check["status"] == "warn", response.text
        assert f"Statuspage refused to delete {incident.ref}" in check["output"]

        # Nothing waits behind it: publishing again makes a new incident there.
        await bot.command("publish major Checkout fails for some cards.", channel=channel)
        await bot.settle()
        assert statuspage.calls[-1].method == "POST"
        assert len(statuspage.incidents) == 2

        clock.advance(timedelta(days=1, minutes=1))  # said for a day
        check = (await client.get("/health")).json()["checks"]["statuspage:outbox"][0]
    assert check["status"] == "pass"


async def test_a_withdrawal_of_an_incident_deleted_there_by_hand_is_done_at_once(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command("publish critical Checkout is down for everyone.", channel=channel)
    await bot.settle()
    del statuspage.incidents["inc0001"]  # deleted on Statuspage's own pages

    await bot.command("unpublish", channel=channel)
    await bot.settle()
    assert [(c.method, c.status) for c in statuspage.refused] == [("PATCH", 404)]  # its components: not there
    async with bot.deps.db.session() as session:
        [_, withdrawal] = await service.syncs(session, incident_id=incident.id or 0)
        assert await service.external_id(session, incident_id=incident.id or 0) is None
    assert withdrawal.sent_at is not None and withdrawal.attempts == 1
    assert not any(REFUSED in m.text or "did not take" in m.text for m in bot.fake.messages(channel))
