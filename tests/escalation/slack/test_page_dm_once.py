"""A page DM Slack posted but whose answer never came back is found in the DM, not posted again."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from bot.clock import FakeClock
from bot.escalation import leases
from bot.escalation.models import TargetKind
from bot.escalation.pages.targets import targets
from tests.escalation.slack.conftest import CONFIG, Starter, escalator, page_dms, page_lines, scheduler, tick

LEAD_ONLY = {**CONFIG, "escalation": {"levels": [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]}}


async def test_a_page_dm_whose_answer_was_cut_is_recorded_on_the_retry_not_posted_again(
    start: Starter, clock: FakeClock
) -> None:
    bot = await start(LEAD_ONLY)
    await bot.declare("P1 Checkout is down", user="U0BOB")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    bot.fake.disconnect("chat.postMessage", acted=True)  # Slack posts the DM; the answer is cut on the way back
    await tick(bot, clock, timedelta(minutes=1))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    (row,) = await escalator(bot).pages(1)
    assert row.sent_at is None  # the bot could not know: it tries again
    await tick(bot, clock, timedelta(seconds=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    (looked,) = bot.fake.calls_to("conversations.history")
    assert looked.args["include_all_metadata"] is True and looked.args["channel"].startswith("D")
    assert page_lines(bot.fake, incident.channel_id)[-1] == "📟 Paged level 1 (Team lead) (attempt 2): <@U0LEAD>"
    (row,) = await escalator(bot).pages(1)
    assert row.sent_to == ["U0LEAD"] and row.sent_at is not None and row.attempts == 2
    await tick(bot, clock, timedelta(minutes=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1


async def test_a_retry_that_cannot_read_the_dm_pages_again_rather_than_not_at_all(
    start: Starter, clock: FakeClock
) -> None:
    """An install made before `im:history` was asked for: the DM's history is refused, so the page goes
    out again (a person paged twice beats a person not paged); `python -m bot check` names the scope."""
    bot = await start(LEAD_ONLY)
    bot.fake.oauth_scopes = [s for s in bot.fake.oauth_scopes or [] if s != "im:history"]
    await bot.declare("P1 Checkout is down", user="U0BOB")
    bot.fake.disconnect("chat.postMessage", acted=True)
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert [c.response.get("error") for c in bot.fake.calls_to("conversations.history")] == ["missing_scope"]
    assert len(page_dms(bot.fake, "U0LEAD")) == 2
    (row,) = await escalator(bot).pages(1)
    assert row.sent_to == ["U0LEAD"] and row.sent_at is not None


async def test_a_sender_stalled_after_slack_posted_its_dm_is_not_repeated_by_the_one_that_takes_over(
    start: Starter, clock: FakeClock
) -> None:
    """As a kill -9 between Slack posting the DM and the bot recording it: the claim's lease runs out and
    another replica takes the page over; it finds the DM and records it."""
    a = await start(LEAD_ONLY)
    await a.declare("P1 Checkout is down", user="U0BOB")
    b = await start(LEAD_ONLY)
    posted = asyncio.Event()

    def a_dm(args: dict[str, Any]) -> bool:
        if not str(args.get("channel", "")).startswith("D"):
            return False
        posted.set()
        return True

    gate = a.fake.hold_after("chat.postMessage", a_dm)
    clock.advance(timedelta(minutes=1))
    stalled = asyncio.create_task(scheduler(a).run())
    await asyncio.wait_for(posted.wait(), 10)
    clock.advance(escalator(a).rt.lease + timedelta(seconds=1))
    await scheduler(b).run()  # the other replica takes the page over; then the stalled answer comes
    # It did take the page over and looked in the DM (else the test would pass on the stalled one's post alone).
    # (It looks in the channel too: the stalled sender might have mentioned the page there before dying.)
    (looked,) = [c for c in a.fake.calls_to("conversations.history") if c.args["channel"].startswith("D")]
    assert looked.args["include_all_metadata"] is True
    gate.set()
    await stalled
    await b.settle()
    assert len(page_dms(a.fake, "U0LEAD")) == 1
    (row,) = await escalator(b).pages(1)
    assert row.sent_to == ["U0LEAD"] and row.sent_at is not None


async def test_a_retry_after_slack_answered_does_not_read_the_dm_but_one_after_a_gateway_page_does(
    start: Starter, clock: FakeClock
) -> None:
    """`ratelimited` is Slack's own answer (the pager sees it once the client's own 429 retries are spent):
    nothing was posted, so nothing to look for. A gateway's 502 page is no answer of Slack's: the DM may be there."""
    bot = await start(LEAD_ONLY)
    await bot.declare("P1 Checkout is down", user="U0BOB")
    bot.fake.fail("chat.postMessage", "ratelimited")
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert bot.fake.calls_to("conversations.history") == []
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    (row,) = await escalator(bot).pages(1)
    assert row.sent_to == ["U0LEAD"] and row.attempts == 2

    await bot.declare("P1 Search is down", user="U0BOB")
    bot.fake.server_error("chat.postMessage", status=502)
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert len(bot.fake.calls_to("conversations.history")) == 1
    (row,) = await escalator(bot).pages(2)
    assert row.sent_to == ["U0LEAD"] and row.attempts == 2

    # `fatal_error` is Slack's answer, but Slack documents it as possibly after part of the work: looked for.
    await bot.declare("P1 Login is down", user="U0BOB")
    bot.fake.fail("chat.postMessage", "fatal_error")
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(seconds=30))
    assert len(bot.fake.calls_to("conversations.history")) == 2


async def test_a_sender_that_died_holding_a_person_after_an_answered_attempt_is_looked_for(
    start: Starter, clock: FakeClock
) -> None:
    """Slack answers attempts 1 and 2 with an error (no look-up before attempt 2); attempt 3's sender claims the
    person and dies before recording anything: its outcome is unknown, so the next sender looks in the DM."""
    bot = await start(LEAD_ONLY)
    await bot.declare("P1 Checkout is down", user="U0BOB")
    bot.fake.fail("chat.postMessage", "service_unavailable")  # the DM; the channel's mention goes through
    await tick(bot, clock, timedelta(minutes=1))
    bot.fake.fail("chat.postMessage", "service_unavailable")
    await tick(bot, clock, timedelta(seconds=30))
    assert bot.fake.calls_to("conversations.history") == [] and page_dms(bot.fake, "U0LEAD") == []
    (page,) = await escalator(bot).pages(1)
    assert page.id is not None
    async with bot.deps.db.session() as session:
        (row,) = [r for r in await targets(session, page_id=page.id) if r.kind == TargetKind.USER]
        assert row.id is not None and row.error == "service_unavailable"
        assert await leases.claim_target(session, target_id=row.id, token="died", now=clock.now(), attempts=2)
    await tick(bot, clock, escalator(bot).rt.lease + timedelta(seconds=1))
    assert len(bot.fake.calls_to("conversations.history")) == 1
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
