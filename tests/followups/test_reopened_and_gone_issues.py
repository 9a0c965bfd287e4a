"""An issue reopened in the tracker opens its follow-up again (only one the tracker closed, and for a
while); an issue deleted there drops its dead link, is not asked about again, and says so. Through the
real app, against each tracker's fake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.followups import flows
from bot.followups.ports import TrackerError
from bot.followups.service import REOPEN_WINDOW, TRASH_GRACE
from bot.incidents.followups import set_done
from bot.incidents.models import ActionItem
from tests.fakes.slack_api import FakeSlack
from tests.followups.conftest import Tracker
from tests.followups.test_followups_e2e import (
    STALE,
    checked_every_10m,
    create_buttons,
    items,
    latest_postmortem,
    reads,
)
from tests.harness import BotHarness

SWEEP = timedelta(minutes=10, seconds=1)  # past checked_every_10m's next run


async def test_a_reopened_issue_opens_the_follow_up_the_tracker_closed_on_the_schedule(
    fake_slack: FakeSlack,
    database_url: str,
    tmp_path: Path,
    tracker: Tracker,
) -> None:
    clock = FakeClock()
    async with checked_every_10m(fake_slack, database_url, tmp_path, tracker, clock) as (bot, incident, checker):
        clock.advance(SWEEP)
        assert await checker.run_due()
        [item] = await items(bot, incident.id or 0)
        assert item.done and item.issue_closed_at is not None

        tracker.fake.reopen(item.issue_key)  # the fix did not hold
        clock.advance(SWEEP)
        assert await checker.run_due()
        [item] = await items(bot, incident.id or 0)
        assert not item.done and item.issue_closed_at is None and item.issue_key
        [event] = [e for e in await bot.timeline(incident.id or 0) if "open again" in e.text]
        assert event.actor == "issue-tracker" and event.data["done"] is False
        assert event.data["item_id"] == item.id and "Retry the SSO call once" in event.text

        tracker.fake.close(item.issue_key)  # and closed again: done again, once
        clock.advance(SWEEP)
        assert await checker.run_due()
        assert (await items(bot, incident.id or 0))[0].done
        closings = [e for e in await bot.timeline(incident.id or 0) if "its issue was closed" in e.text]
        assert len(closings) == 2


async def filed(bot: BotHarness, incident_id: int, channel: str, text: str) -> ActionItem:
    await bot.command(f"action {text}", channel=channel)
    item = next(i for i in await items(bot, incident_id) if i.text == text)
    return await flows.create_issue(bot.deps, item_id=item.id or 0, actor="U0ALICE")


async def test_only_the_follow_up_its_issue_closed_is_reopened_and_only_within_the_window(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    """Three follow-ups whose issues are reopened: one the tracker closed (opened again), one a person
    marked done while its issue was open (their word stands: never asked about), and one the tracker
    closed longer ago than REOPEN_WINDOW (no longer asked about: the checks stay bounded)."""
    incident = await tbot.declare("P2 Disk full on db-2")
    channel, number = incident.channel_id or "", incident.id or 0
    old = await filed(tbot, number, channel, "Rotate logs hourly")
    tracker.fake.close(old.issue_key)
    clock.advance(STALE)
    await flows.refresh(tbot.deps)
    clock.advance(REOPEN_WINDOW)  # a month later
    recent = await filed(tbot, number, channel, "Alert on disk at 80%")
    by_hand = await filed(tbot, number, channel, "Move WAL to its own volume")
    tracker.fake.close(recent.issue_key)
    async with tbot.deps.db.session() as session:  # *Mark done* on the dashboard (bot.incidents.followups)
        incident_row = await tbot.incident(number)
        await set_done(
            session,
            incident=incident_row,
            item_id=by_hand.id or 0,
            done=True,
            actor="U0BOB",
            now=clock.now(),
            via="test",
        )
    clock.advance(STALE)
    await flows.refresh(tbot.deps)
    assert [i.done for i in await items(tbot, number)] == [True, True, True]

    for item in (old, recent, by_hand):
        tracker.fake.reopen(item.issue_key)
    clock.advance(timedelta(minutes=2))
    asked = reads(tracker)
    await tbot.command("postmortem", channel=channel)  # shown: the tracker is asked first
    done = {i.text: i.done for i in await items(tbot, number)}
    assert done == {"Rotate logs hourly": True, "Alert on disk at 80%": False, "Move WAL to its own volume": True}
    assert reads(tracker) == asked + 1  # only the recent one was asked about
    [event] = [e for e in await tbot.timeline(number) if "open again" in e.text]
    assert "Alert on disk at 80%" in event.text and event.data["item_id"] == recent.id


async def test_a_deleted_issue_drops_the_dead_link_says_so_and_a_new_one_can_be_made(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    incident = await tbot.declare("P1 Login outage")
    channel = incident.channel_id or ""
    await tbot.command("action Add a second identity provider", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    item = await flows.create_issue(tbot.deps, item_id=item.id or 0, actor="U0ALICE")
    name = {"github": "#1", "jira": "OPS-1", "linear": "ENG-1"}[tracker.kind]
    dead = item.issue_url
    # Deleted in the tracker (Linear: for good; one in its trash keeps its link for a while, tested apart).
    tracker.fake.delete(item.issue_key, **({"purge": True} if tracker.kind == "linear" else {}))

    clock.advance(STALE)
    await tbot.command("postmortem", channel=channel)  # shown: the tracker is asked first
    [item] = await items(tbot, incident.id or 0)
    assert item.text == "Add a second identity provider" and not item.done
    assert item.issue_url is None and item.issue_key is None and item.issue_token is None
    assert item.issue_gone == name
    [event] = [e for e in await tbot.timeline(incident.id or 0) if "gone from the tracker" in e.text]
    assert event.actor == "issue-tracker" and event.data["gone"] is True and event.data["issue_url"] == dead
    assert f"issue {name} is gone" in event.text and "Add a second identity provider" in event.text
    row = next(line for line in latest_postmortem(tbot).splitlines() if "second identity provider" in line)
    assert "gone from the tracker" in row and "| open |" in row and str(dead) not in row  # its name: Markdown-escaped

    asked = reads(tracker)
    clock.advance(STALE)
    await flows.refresh(tbot.deps)
    await tbot.command("action Document the failover", channel=channel)  # lists the follow-ups again
    assert reads(tracker) == asked  # not asked about again
    listing = tbot.fake.messages(channel)[-1]
    assert f"issue {name} gone from the tracker" in str(listing.blocks)
    assert str(item.id) in create_buttons(listing)  # *Create issue* is offered again

    await tbot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=channel)
    [item, _] = await items(tbot, incident.id or 0)
    assert item.issue_url and item.issue_url != dead and item.issue_gone is None


LINEAR_ONLY = pytest.mark.parametrize("tracker", ["linear"], indirect=True)


async def checked_after(bot: BotHarness, clock: FakeClock, wait: timedelta, incident_id: int) -> ActionItem:
    """The follow-up as stored after a check `wait` later (the schedule's sweep: `flows.refresh`)."""
    clock.advance(wait)
    await flows.refresh(bot.deps)
    [item] = await items(bot, incident_id)
    return item


@LINEAR_ONLY
async def test_a_linear_issue_restored_from_the_trash_keeps_its_link_one_left_there_loses_it(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    """Linear's delete is a trash that can be undone: the link stays for TRASH_GRACE from when the check
    first saw the issue there, and goes only if it is still there after it."""
    incident = await tbot.declare("P2 Search is slow")
    number = incident.id or 0
    filed_item = await filed(tbot, number, incident.channel_id or "", "Index orders.created_at")
    key, url = filed_item.issue_key or "", filed_item.issue_url

    tracker.fake.delete(key)  # into the trash by mistake
    item = await checked_after(tbot, clock, STALE, number)
    assert (item.issue_key, item.issue_url, item.issue_gone) == (key, url, None)
    tracker.fake.restore(key)  # and out of it, hours later
    item = await checked_after(tbot, clock, TRASH_GRACE - timedelta(hours=1), number)
    assert (item.issue_key, item.issue_url, item.issue_gone) == (key, url, None)
    item = await checked_after(tbot, clock, TRASH_GRACE, number)  # the grace is not counted from the first trash
    assert (item.issue_key, item.issue_url) == (key, url) and not item.done

    tracker.fake.delete(key)  # trashed again, and left there
    assert (await checked_after(tbot, clock, STALE, number)).issue_key == key
    assert (await checked_after(tbot, clock, TRASH_GRACE - STALE, number)).issue_key == key
    clock.advance(STALE)
    assert await flows.refresh(tbot.deps) == 1  # counted as a change (the sweep logs it)
    [item] = await items(tbot, number)
    assert item.issue_key is None and item.issue_url is None and item.issue_gone == "ENG-1"
    [event] = [e for e in await tbot.timeline(number) if "gone from the tracker" in e.text]
    assert event.actor == "issue-tracker" and event.data["issue_url"] == url


@LINEAR_ONLY
async def test_a_linear_key_that_lost_access_to_the_team_keeps_every_link(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    """Linear says "Entity not found" for an issue of a team the key can no longer read, as for a purged
    one: the team's own read fails too, so it is the key's problem (asked again), not the issues'."""
    incident = await tbot.declare("P2 Search is slow")
    number = incident.id or 0
    filed_item = await filed(tbot, number, incident.channel_id or "", "Index orders.created_at")
    tracker.fake.lose_access()
    asked = reads(tracker)
    clock.advance(STALE)
    with pytest.raises(TrackerError, match="could not read any of 1 issue"):  # the sweep records it: /health warns
        await flows.refresh(tbot.deps)
    [item] = await items(tbot, number)
    assert reads(tracker) == asked + 1  # it was asked, and answered "not found"
    assert (item.issue_key, item.issue_url, item.issue_gone) == (filed_item.issue_key, filed_item.issue_url, None)
    assert not [e for e in await tbot.timeline(number) if "gone from the tracker" in e.text]

    tracker.fake.readable = True  # access given back: read as usual again
    tracker.fake.close(filed_item.issue_key)
    assert (await checked_after(tbot, clock, STALE, number)).done
