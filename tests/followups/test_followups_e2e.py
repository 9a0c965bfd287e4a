"""Follow-ups to issues through the real app, against each tracker's fake and the fake Slack."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.clock import FakeClock, utc
from bot.followups import flows
from bot.followups import service as followup_service
from bot.followups.checker import ClosedIssueChecker
from bot.followups.models import FollowupCheck
from bot.followups.service import RECHECK_AFTER
from bot.incidents.models import ActionItem, Incident
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack, Message
from tests.followups.conftest import Tracker
from tests.harness import BotHarness, running_bot

# Past the freshness rule: a follow-up asked about within a minute is shown as stored.
STALE = RECHECK_AFTER + timedelta(seconds=1)


def reads(tracker: Tracker) -> int:
    """Requests that ask the tracker about an issue (Linear's are POSTs to /graphql)."""
    return len([r for r in tracker.fake.requests if r.method == "GET" or b"IssueState" in r.body])


def create_buttons(message: Message) -> list[str]:
    return [
        str(b["accessory"]["value"])
        for b in message.blocks or []
        if (b.get("accessory") or {}).get("action_id") == "followup_create_issue"
    ]


async def items(bot: BotHarness, incident_id: int) -> list[ActionItem]:
    from bot.incidents import service

    async with bot.deps.db.session() as session:
        return await service.action_items(session, incident_id=incident_id)


def latest_postmortem(bot: BotHarness) -> str:
    files = [f for f in bot.fake.files.values() if f.completed]
    return (files[-1].content or b"").decode()


async def wait_for(check: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, "the condition never came true"
        await asyncio.sleep(0.05)


async def test_create_issue_button_files_the_follow_up_and_a_closed_issue_marks_it_done(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    incident = await tbot.declare("P1 Checkout is down")
    channel = incident.channel_id or ""
    await tbot.command("action Add a canary stage to gateway deploys <@U0BOB>", channel=channel, user="U0CAROL")
    [notice] = [m for m in tbot.fake.messages(channel) if create_buttons(m) and m.ephemeral_to is None]
    assert "added a follow-up" in notice.text
    [listing] = [m for m in tbot.fake.messages(channel) if m.ephemeral_to == "U0CAROL" and create_buttons(m)]
    assert create_buttons(listing) == create_buttons(notice)  # the reply to /incident action offers it too
    [value] = create_buttons(notice)
    assert tracker.fake.issues == {}

    await tbot.click("followup_create_issue", value, user="U0CAROL", channel=channel, message_ts=notice.ts)
    [item] = await items(tbot, incident.id or 0)
    assert item.issue_url and item.issue_key and not item.done
    [key] = tracker.keys()
    stored = tracker.fake.issues[int(key) if tracker.kind == "github" else key]
    text = str(stored)
    assert "Add a canary stage to gateway deploys" in text and "INC-1" in text
    assert item.issue_url in tbot.last_reply() and "created" in tbot.last_reply()
    assert tbot.fake.responses[-1].get("response_type") == "in_channel"

    await tbot.click("followup_create_issue", value, user="U0ALICE", channel=channel, message_ts=notice.ts)
    assert "already has an issue" in tbot.last_reply() and len(tracker.fake.issues) == 1

    tracker.fake.close(item.issue_key)
    clock.advance(STALE)
    await tbot.command("postmortem", channel=channel)  # shown again: the tracker is asked first
    [item] = await items(tbot, incident.id or 0)
    assert item.done
    document = latest_postmortem(tbot)
    row = next(line for line in document.splitlines() if "Add a canary stage" in line and line.startswith("| 1 |"))
    assert "| done |" in row and f"[issue]({item.issue_url})" in row
    events = [e.text for e in await tbot.timeline(incident.id or 0)]
    assert any("follow-up done (its issue was closed)" in e for e in events)
    assert any(e.startswith("issue ") and "created for the follow-up" in e for e in events)


async def test_postmortem_done_files_every_open_follow_up_once(tbot: BotHarness, tracker: Tracker) -> None:
    incident = await tbot.declare("P2 Search is slow")
    channel = incident.channel_id or ""
    await tbot.command("action Add an index on search_terms", channel=channel)
    await tbot.command("action Alert on p95 latency over 2 s", channel=channel)
    await tbot.command("action Load-test search before releases", channel=channel)
    first, second, third = await items(tbot, incident.id or 0)
    await flows.create_issue(tbot.deps, item_id=first.id or 0, actor="U0ALICE")  # the dashboard's entry point
    async with tbot.deps.db.session() as session:
        from sqlalchemy import update

        await session.exec(update(ActionItem).where(ActionItem.id == third.id).values(done=True))  # type: ignore[call-overload,arg-type]
        await session.commit()

    await tbot.command("resolve added the index", channel=channel)
    await tbot.command("postmortem done", channel=channel)
    reply = tbot.last_reply()
    assert "marked finished" in reply and "1 issue(s) created for open follow-ups, 1 had one" in reply
    assert len(tracker.fake.issues) == 2  # the done one is not filed
    first, second, third = await items(tbot, incident.id or 0)
    assert first.issue_url and second.issue_url and third.issue_url is None
    assert second.issue_url in reply


@asynccontextmanager
async def checked_every_10m(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker, clock: FakeClock
) -> AsyncIterator[tuple[BotHarness, Incident, ClosedIssueChecker]]:
    """A bot checking closed issues every 10 minutes, with one follow-up whose issue was just closed."""
    config = {"issue_tracker": {**tracker.config, "check_every": "10m"}}
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as bot:
        incident = await bot.declare("P3 Flaky login")
        await bot.command("action Retry the SSO call once", channel=incident.channel_id or "")
        [item] = await items(bot, incident.id or 0)
        item = await flows.create_issue(bot.deps, item_id=item.id or 0, actor="U0ALICE")
        tracker.fake.close(item.issue_key)
        checker = bot.deps.followup_checker
        assert checker is not None
        yield bot, incident, checker


async def test_closed_issues_are_checked_on_a_schedule(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker
) -> None:
    clock = FakeClock()
    async with checked_every_10m(fake_slack, database_url, tmp_path, tracker, clock) as (bot, incident, checker):
        assert not await checker.run_due() and reads(tracker) == 0  # not due: nobody is asked
        async with bot.deps.db.session() as session:
            [timer] = (await session.exec(select(FollowupCheck))).all()
        assert utc(timer.due_at) == clock.now() + timedelta(minutes=10)  # planned at start (the clock stood still)
        clock.advance(timedelta(minutes=10, seconds=1))
        checker.wake_at(clock.now())  # what the date job does at the due time (the fake clock moved, not time)

        async def done() -> bool:
            return (await items(bot, incident.id or 0))[0].done

        async def released() -> bool:  # the run's last write, after the follow-up it marked done
            async with bot.deps.db.session() as session:
                [timer] = (await session.exec(select(FollowupCheck))).all()
            return timer.claim_token is None

        await wait_for(done)  # nobody looked at it: the checker found the closed issue
        await wait_for(released)
        events = [e for e in await bot.timeline(incident.id or 0) if "its issue was closed" in e.text]
        assert len(events) == 1 and reads(tracker) == 1
        async with bot.deps.db.session() as session:
            [timer] = (await session.exec(select(FollowupCheck))).all()
        assert timer.runs == 1 and timer.error is None
        assert utc(timer.due_at) == utc(timer.last_run_at or timer.due_at) + timedelta(minutes=10)


async def test_a_shutdown_lets_a_sweep_in_flight_finish(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, tracker: Tracker
) -> None:
    """SIGTERM (a deploy) while the scheduler's sweep waited on the tracker: the sweep was cancelled,
    left claimed for its lease's ten minutes, and the closed issue unnoticed meanwhile."""
    clock = FakeClock()
    async with checked_every_10m(fake_slack, database_url, tmp_path, tracker, clock) as (bot, incident, checker):
        clock.advance(timedelta(minutes=10, seconds=1))
        tracker.fake.hang_next(1.0)  # the tracker is slow to answer this sweep's read
        checker.wake_at(clock.now())  # the scheduler runs it, as in production

        async def asked() -> bool:
            return reads(tracker) == 1

        await wait_for(asked)
        await asyncio.wait_for(checker.stop(), 10)
        assert (await items(bot, incident.id or 0))[0].done
        async with bot.deps.db.session() as session:
            [timer] = (await session.exec(select(FollowupCheck))).all()
        assert timer.runs == 1 and timer.claim_token is None


async def test_a_follow_up_asked_about_within_a_minute_is_not_asked_again(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock
) -> None:
    incident = await tbot.declare("P2 Cache stampede")
    channel = incident.channel_id or ""
    await tbot.command("action Add request coalescing", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    await flows.create_issue(tbot.deps, item_id=item.id or 0, actor="U0ALICE")
    for _ in range(3):  # shown three times right after it was filed: what was just stored is shown
        await tbot.command("postmortem", channel=channel)
        await tbot.command("action Another one", channel=channel)
    assert reads(tracker) == 0

    clock.advance(STALE)
    await tbot.command("postmortem", channel=channel)
    assert reads(tracker) == 1  # stale: asked once
    await tbot.command("postmortem", channel=channel)
    await flows.refresh(tbot.deps, incident_id=incident.id)
    assert reads(tracker) == 1  # and fresh again for a minute

    clock.advance(STALE)
    await asyncio.gather(*(flows.refresh(tbot.deps, incident_id=incident.id) for _ in range(3)))
    assert reads(tracker) == 2  # three showings at once: one of them asks (the check is claimed)


async def test_an_issue_created_before_a_crash_is_found_on_retry_not_created_again(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracker made the issue; the process died before storing its key (nothing released the claim)."""
    incident = await tbot.declare("P1 Payments failing")
    channel = incident.channel_id or ""
    await tbot.command("action Page the payments team on 5xx", channel=channel)
    [item] = await items(tbot, incident.id or 0)

    class Crash(Exception):
        pass

    async def dies(*args: Any, **kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(followup_service, "record", dies)
        patch.setattr(followup_service, "release", dies)
        with pytest.raises(Crash):
            await flows.create_issue(tbot.deps, item_id=item.id or 0, actor="U0ALICE")
    assert len(tracker.fake.issues) == 1
    [item] = await items(tbot, incident.id or 0)
    assert item.issue_url is None and item.issue_token and item.issue_claimed_at is not None

    await tbot.click("followup_create_issue", str(item.id), user="U0CAROL", channel=channel)
    assert "being created" in tbot.last_reply()  # the dead process's claim still holds
    clock.advance(followup_service.LEASE + timedelta(seconds=1))
    await tbot.click("followup_create_issue", str(item.id), user="U0CAROL", channel=channel)
    assert len(tracker.fake.issues) == 1, "the retry opened a second issue"
    [item] = await items(tbot, incident.id or 0)
    [key] = tracker.keys()
    assert item.issue_key == key and item.issue_url and item.issue_url in tbot.last_reply()


async def test_without_a_tracker_there_is_no_button_and_the_flow_says_why(bot: BotHarness) -> None:
    incident = await bot.declare("P2 Something")
    await bot.command("action Write the runbook", channel=incident.channel_id or "")
    assert not any(create_buttons(m) for m in bot.fake.messages(incident.channel_id or ""))
    [item] = await items(bot, incident.id or 0)
    from bot.exceptions import InvalidState

    with pytest.raises(InvalidState, match="issue_tracker"):
        await flows.create_issue(bot.deps, item_id=item.id or 0, actor="U0ALICE")


async def test_someone_who_cannot_see_a_private_incident_cannot_file_its_follow_ups(
    tbot: BotHarness, tracker: Tracker
) -> None:
    await tbot.command("declare P1 Credential leak", user="U0ALICE")
    async with tbot.deps.db.session() as session:  # `declare private` is another change; the flag is what counts
        from sqlalchemy import update

        from bot.incidents.models import Incident

        await session.exec(update(Incident).where(Incident.id == 1).values(private=True))  # type: ignore[call-overload,arg-type]
        await session.commit()
    incident = await tbot.incident(1)
    assert incident.private
    await tbot.command("action Rotate the leaked keys", channel=incident.channel_id or "", user="U0ALICE")
    [item] = await items(tbot, 1)
    outsider = next(
        u for u in ("U0CTO", "U0LEAD", "U0CAROL") if u not in tbot.fake.channels[incident.channel_id or ""].members
    )
    await tbot.click("followup_create_issue", str(item.id), user=outsider, channel="C0GENERAL")
    assert f"no follow-up #{item.id}" in tbot.last_reply().lower()
    assert tracker.fake.issues == {}
    await tbot.click("followup_create_issue", str(item.id), user="U0ALICE", channel=incident.channel_id)
    assert len(tracker.fake.issues) == 1


async def test_postmortem_done_when_the_tracker_is_throttling_says_what_was_not_filed(
    tbot: BotHarness, tracker: Tracker
) -> None:
    incident = await tbot.declare("P2 Queue backlog")
    channel = incident.channel_id or ""
    await tbot.command("action Scale the consumers", channel=channel)
    await tbot.command("action Alert on queue age", channel=channel)
    await tbot.command("resolve consumers scaled", channel=channel)
    tracker.fake.rate_limit_next(600)  # far longer than the bot waits in-line
    await tbot.command("postmortem done", channel=channel)
    reply = tbot.last_reply()
    assert "0 issue(s) created" in reply
    assert reply.count("try again in") == 2  # both follow-ups named, the second without another request
    assert tracker.fake.issues == {} and len(tracker.fake.requests) == 1


async def test_postmortem_done_files_the_others_when_one_follow_up_fails_unexpectedly(
    tbot: BotHarness, tracker: Tracker, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One follow-up's create failed with an error that is not the tracker's (a database blip, an answer the
    bot could not read): the loop stopped there, the rest were never tried, and the reply said only that
    something went wrong, although the post-mortem was marked finished."""
    incident = await tbot.declare("P2 Queue backlog")
    channel = incident.channel_id or ""
    for text in ("Scale the consumers", "Alert on queue age", "Document the backlog runbook"):
        await tbot.command(f"action {text}", channel=channel)
    first, _, _ = await items(tbot, incident.id or 0)
    real = flows._find_or_create

    async def fails_for_the_first(deps: Any, tracker_: Any, item: ActionItem, incident_: Incident) -> Any:
        if item.id == first.id:
            raise ValueError("unreadable answer")
        return await real(deps, tracker_, item, incident_)

    monkeypatch.setattr(flows, "_find_or_create", fails_for_the_first)
    await tbot.command("resolve consumers scaled", channel=channel)
    await tbot.command("postmortem done", channel=channel)
    reply = tbot.last_reply()
    assert "marked finished" in reply and "2 issue(s) created" in reply, reply
    assert "Scale the consumers" in reply and "Create issue" in reply
    assert len(tracker.fake.issues) == 2
    assert [bool(i.issue_url) for i in await items(tbot, incident.id or 0)] == [False, True, True]


async def test_an_orphan_issue_deleted_in_the_tracker_before_the_retry_does_not_block_the_follow_up(
    tbot: BotHarness, tracker: Tracker, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The tracker made the issue, the process died before storing it, and a person deleted that stray
    issue in the tracker. Linear then refused every retry ("Entity already exists": the stored token is
    the deleted issue's id, which Linear's issue list no longer shows), so the follow-up could never get one."""
    incident = await tbot.declare("P1 Payments failing")
    channel = incident.channel_id or ""
    await tbot.command("action Page the payments team on 5xx", channel=channel)
    [item] = await items(tbot, incident.id or 0)

    class Crash(Exception):
        pass

    async def dies(*args: Any, **kwargs: Any) -> None:
        raise Crash

    with monkeypatch.context() as patch:
        patch.setattr(followup_service, "record", dies)
        patch.setattr(followup_service, "release", dies)
        with pytest.raises(Crash):
            await flows.create_issue(tbot.deps, item_id=item.id or 0, actor="U0ALICE")
    [orphan] = tracker.keys()
    tracker.fake.delete(orphan)  # GitHub and Jira: gone; Linear: in its trash
    clock.advance(followup_service.LEASE + timedelta(seconds=1))

    await tbot.click("followup_create_issue", str(item.id), user="U0CAROL", channel=channel)
    [item] = await items(tbot, incident.id or 0)
    assert item.issue_url and item.issue_key and item.issue_key != orphan, tbot.last_reply()
    assert item.issue_url in tbot.last_reply() and "created" in tbot.last_reply()
