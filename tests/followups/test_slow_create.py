"""A create that takes longer than the claim's lease (rate limits, lost answers) keeps its claim: a second
click meanwhile is told the issue is being created, and one issue is made."""

from __future__ import annotations

import contextlib
from datetime import timedelta

import pytest

from bot.clock import FakeClock, utc
from bot.followups import flows
from bot.followups import service as followup_service
from tests.followups.conftest import Tracker
from tests.followups.test_followups_e2e import items, wait_for
from tests.harness import BotHarness

CREATE_MARK = {"github": "title", "jira": "summary", "linear": "issueCreate"}  # in a create's body only


async def test_a_create_slower_than_the_lease_keeps_its_claim_and_a_second_click_makes_no_second_issue(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(flows, "RENEW_EVERY", 0.02)  # the renewal's pace, in real seconds
    incident = await tbot.declare("P1 Payments failing")
    channel = incident.channel_id or ""
    await tbot.command("action Page the payments team on 5xx", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    mark = CREATE_MARK[tracker.kind].encode()
    tracker.fake.hang_until_released(body_contains=CREATE_MARK[tracker.kind])  # the tracker is slow to answer

    await tbot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel, settle=False)

    async def asked() -> bool:
        return any(r.method == "POST" and mark in r.body for r in tracker.fake.requests)

    await wait_for(asked)
    clock.advance(followup_service.LEASE + timedelta(seconds=1))  # still waiting on the tracker, past the lease

    async def renewed() -> bool:
        [row] = await items(tbot, incident.id or 0)
        return row.issue_claimed_at is not None and utc(row.issue_claimed_at) >= clock.now()

    with contextlib.suppress(AssertionError):  # without a renewal, the second click below shows what follows
        await wait_for(renewed, within=2.0)
    replies = len(tbot.replies())
    try:
        # Settled only once the first is let go (settling waits for every task, the first click's too).
        await tbot.click("followup_create_issue", str(item.id), user="U0CAROL", channel=channel, settle=False)

        async def answered() -> bool:
            return len(tbot.replies()) > replies or len(tracker.fake.issues) > 0

        await wait_for(answered, within=5.0)
        assert len(tracker.fake.issues) == 0, "the second click created an issue while the first was still at it"
        assert "being created" in tbot.last_reply()
    finally:
        tracker.fake.release()  # the first click's create goes on
    await tbot.settle()
    assert len(tracker.fake.issues) == 1, "the second click created a second issue"
    [item] = await items(tbot, incident.id or 0)
    [key] = tracker.keys()
    assert item.issue_key == key and item.issue_url and item.issue_url in tbot.last_reply()
