"""A create that outlived its claim (its process stalled, so the lease was not renewed) answers after a
second click made and stored the follow-up's issue: the stored link is kept, the log names both issues,
and the person whose click made the second one is told to close it."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest

from bot.clock import FakeClock
from bot.followups import service as followup_service
from tests.followups.conftest import Tracker
from tests.followups.test_followups_e2e import items, wait_for
from tests.followups.test_slow_create import CREATE_MARK
from tests.harness import BotHarness


async def test_a_late_create_keeps_the_stored_link_and_names_the_duplicate(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    incident = await tbot.declare("P1 Payments failing")
    channel = incident.channel_id or ""
    await tbot.command("action Page the payments team on 5xx", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    mark = CREATE_MARK[tracker.kind].encode()
    tracker.fake.hang_until_released(body_contains=CREATE_MARK[tracker.kind])  # the first create is held

    await tbot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel, settle=False)

    async def asked() -> bool:
        return any(r.method == "POST" and mark in r.body for r in tracker.fake.requests)

    await wait_for(asked)
    clock.advance(followup_service.LEASE + timedelta(seconds=1))  # its claim lapsed, not renewed in time
    await tbot.click("followup_create_issue", str(item.id), user="U0CAROL", channel=channel, settle=False)

    async def stored() -> bool:
        [row] = await items(tbot, incident.id or 0)
        return row.issue_url is not None

    await wait_for(stored)
    [first] = await items(tbot, incident.id or 0)
    caplog.set_level(logging.WARNING, logger="bot.followups.service")
    tracker.fake.release()  # the stalled create answers now
    await tbot.settle()

    [item] = await items(tbot, incident.id or 0)
    assert (item.issue_url, item.issue_key) == (first.issue_url, first.issue_key), "the stored link was replaced"
    reply = tbot.last_reply()
    assert first.issue_url and first.issue_url in reply
    if tracker.kind == "linear":  # the same id twice is refused: the late create finds the stored issue
        assert len(tracker.fake.issues) == 1
        assert "already has an issue" in reply
        return
    assert len(tracker.fake.issues) == 2
    keys = tracker.keys()
    [late] = [k for k in keys if k != first.issue_key]
    name = f"#{late}" if tracker.kind == "github" else late
    assert f"|{name}>" in reply and "duplicate" in reply and "close it" in reply
    [warning] = [r.getMessage() for r in caplog.records if "second issue" in r.getMessage()]
    assert name in warning and first.issue_url in warning


async def test_postmortem_done_whose_late_create_made_a_duplicate_names_it(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    """`/incident postmortem done` filed a follow-up whose create outlived its claim while a click filed it:
    the reply counted it as "had one" and never named the second issue, left open in the tracker."""
    incident = await tbot.declare("P1 Payments failing")
    channel = incident.channel_id or ""
    await tbot.command("action Page the payments team on 5xx", channel=channel)
    await tbot.command("resolve payments back", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    mark = CREATE_MARK[tracker.kind].encode()
    tracker.fake.hang_until_released(body_contains=CREATE_MARK[tracker.kind])  # the filing's create is held

    await tbot.command("postmortem done", channel=channel, user="U0ALICE", settle=False)

    async def asked() -> bool:
        return any(r.method == "POST" and mark in r.body for r in tracker.fake.requests)

    await wait_for(asked)
    clock.advance(followup_service.LEASE + timedelta(seconds=1))  # its claim lapsed, not renewed in time
    await tbot.click("followup_create_issue", str(item.id), user="U0CAROL", channel=channel, settle=False)

    async def stored() -> bool:
        [row] = await items(tbot, incident.id or 0)
        return row.issue_url is not None

    await wait_for(stored)
    [first] = await items(tbot, incident.id or 0)
    tracker.fake.release()
    await tbot.settle()

    reply = next(r for r in reversed(tbot.replies()) if "marked finished" in r)
    if tracker.kind == "linear":  # the same id twice is refused: no second issue
        assert len(tracker.fake.issues) == 1 and "duplicate" not in reply
        return
    keys = tracker.keys()
    [late] = [k for k in keys if k != first.issue_key]
    name = f"#{late}" if tracker.kind == "github" else late
    assert f"|{name}>" in reply and "duplicate" in reply and "close it" in reply, reply
    assert first.issue_url and first.issue_url in reply
