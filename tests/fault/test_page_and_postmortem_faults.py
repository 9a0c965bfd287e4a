"""Slack throttling and failing while a page goes out, and while the post-mortem draft is uploaded.

Nothing lost: each paged person gets the DM, each resolved incident gets its draft (or a message
saying how to get it). Nothing doubled: one DM per person per level, one draft per resolve.
The clock is a FakeClock; the scheduler's run is driven by hand.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from bot.clock import FakeClock
from bot.escalation.models import Page, PageTarget, TargetState
from tests.conftest import make_settings
from tests.crash import stay_up
from tests.fakes.slack_api import FakeSlack
from tests.fault.support import bot_errors, count
from tests.harness import BotHarness, running_bot

CONFIG = {
    "escalation": {
        "levels": [
            {"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]},
            {"name": "CTO", "after": "2m", "notify": ["U0CTO"]},
        ]
    }
}


@pytest.fixture
async def paging_bot(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings, clock=FakeClock()) as harness:
        yield harness


async def _tick(bot: BotHarness, seconds: float) -> None:
    """Move time on and let the scheduler send what is due, as its timer would."""
    clock = bot.deps.clock
    assert isinstance(clock, FakeClock)
    clock.advance(timedelta(seconds=seconds))
    assert bot.deps.scheduler is not None
    await bot.deps.scheduler.run()
    await bot.settle()


def _pages_to(bot: BotHarness, user: str, ref: str = "INC-1") -> int:
    return sum(1 for m in bot.fake.dms(user) if f"Paged for {ref} " in m.text)


async def test_429_bursts_while_paging_are_waited_out(paging_bot: BotHarness) -> None:
    bot = paging_bot
    await bot.declare()
    for method in ("conversations.open", "chat.postMessage", "conversations.invite"):
        bot.fake.throttle(method, count=1, retry_after=0)
    with bot_errors() as errors:
        await _tick(bot, 61)
        await _tick(bot, 60)
    assert _pages_to(bot, "U0LEAD") == 1 and _pages_to(bot, "U0CTO") == 1
    assert await count(bot.deps, Page, Page.sent_at.is_not(None)) == 2  # type: ignore[union-attr]
    assert not errors.records, errors.describe()


async def test_a_page_that_reached_nobody_is_retried_and_sent_once(paging_bot: BotHarness) -> None:
    """Slack fails both the DM and the channel mention: the page is retried later, and sent once."""
    bot = paging_bot
    await bot.declare()
    await _tick(bot, 30)  # nothing due yet
    assert _pages_to(bot, "U0LEAD") == 0
    bot.fake.server_error("chat.postMessage", count=2)  # the DM, then the mention in the channel
    await _tick(bot, 31)
    assert _pages_to(bot, "U0LEAD") == 0
    await _tick(bot, 31)  # past the 30 s retry back-off
    assert _pages_to(bot, "U0LEAD") == 1
    for _ in range(3):
        await _tick(bot, 60)
    assert _pages_to(bot, "U0LEAD") == 1, "the lead is paged exactly once"
    assert _pages_to(bot, "U0CTO") == 1


async def test_a_5xx_on_the_page_dm_is_retried_until_the_person_is_paged(paging_bot: BotHarness) -> None:
    bot = paging_bot
    await bot.declare()
    bot.fake.server_error("chat.postMessage", count=1)  # the next postMessage is the page DM
    await _tick(bot, 61)
    for _ in range(3):
        await _tick(bot, 31)  # past the 30 s retry back-off, before level 2 (120 s)
    assert _pages_to(bot, "U0LEAD") == 1


async def test_a_dropped_connection_on_the_page_dm_is_retried_as_a_network_failure(paging_bot: BotHarness) -> None:
    """Slack (or a proxy) closes the keep-alive connection under the page DM, and again under slack_sdk's own
    second try: the person stays pending as "unreachable" (not a bug with a stack trace) and is paged later."""
    bot = paging_bot
    await bot.declare()
    bot.fake.disconnect("chat.postMessage", count=2)  # the next postMessage is the page DM
    with bot_errors() as errors:
        await _tick(bot, 61)
    assert not errors.records, errors.describe()
    assert _pages_to(bot, "U0LEAD") == 0
    lead = (PageTarget.recipient == "U0LEAD", PageTarget.state == TargetState.PENDING)
    assert await count(bot.deps, PageTarget, *lead, PageTarget.error == "unreachable") == 1
    await _tick(bot, 31)  # past the 30 s retry back-off, before level 2 (120 s)
    assert _pages_to(bot, "U0LEAD") == 1


async def test_429_during_the_post_mortem_upload_shares_one_draft(paging_bot: BotHarness) -> None:
    bot = paging_bot
    incident = await bot.declare()
    for method in ("files.getUploadURLExternal", "files.completeUploadExternal"):
        bot.fake.throttle(method, count=1, retry_after=0)
    await bot.command("resolve rolled back", channel=incident.channel_id or "")
    await bot.settle()
    shared = [f for f in bot.fake.files.values() if f.completed]
    assert len(shared) == 1 and shared[0].channels == [incident.channel_id]
    assert [m for m in bot.fake.messages(incident.channel_id or "") if m.files] != []


async def test_5xx_during_the_post_mortem_upload_is_tried_again_and_shares_one(paging_bot: BotHarness) -> None:
    bot = paging_bot
    incident = await bot.declare()
    where = incident.channel_id or ""
    bot.fake.server_error("files.completeUploadExternal", count=1)
    await bot.command("resolve rolled back", channel=where)
    await bot.settle()
    assert not [f for f in bot.fake.files.values() if f.completed]
    await one_draft_after_the_retry(bot, where)


async def one_draft_after_the_retry(bot: BotHarness, where: str) -> None:
    """The resolve's work is retried after the sweep's grace: one draft in the channel, no failure said."""
    await bot.settle()
    clock = bot.deps.clock
    assert isinstance(clock, FakeClock)
    await stay_up(bot, clock, every=timedelta(minutes=1), times=4)
    shared = [f for f in bot.fake.files.values() if f.completed]
    assert len(shared) == 1 and shared[0].channels == [where]
    told = [m.text for m in bot.fake.messages(where) if "could not be shared" in m.text]
    assert told == [], "the channel was told of a draft it has"


@pytest.mark.parametrize("acted", [False, True], ids=["dropped", "shared-answer-cut"])
async def test_a_dropped_connection_during_the_post_mortem_upload_shares_one(
    paging_bot: BotHarness, acted: bool
) -> None:
    """The connection closes under files.completeUploadExternal: before Slack shared the draft (and again
    under slack_sdk's own second try), or after, with the answer cut short. Either way it is tried again as
    a network failure (not said in the channel as an internal error), and the channel ends with one draft."""
    bot = paging_bot
    incident = await bot.declare()
    where = incident.channel_id or ""
    bot.fake.disconnect("files.completeUploadExternal", count=1 if acted else 2, acted=acted)
    await bot.command("resolve rolled back", channel=where)
    await one_draft_after_the_retry(bot, where)


@pytest.fixture
async def immediate_pager(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    """A bot whose only level pages U0LEAD at once."""
    config = {"escalation": {"levels": [{"name": "On-call", "after": "0s", "notify": ["U0LEAD"]}]}}
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        yield bot


async def test_paging_does_not_wait_for_a_throttled_channel_creation(immediate_pager: BotHarness) -> None:
    bot, fake_slack = immediate_pager, immediate_pager.fake
    fake_slack.throttle("conversations.create", count=1, retry_after=2)
    await bot.command("declare P1 Checkout is down")
    methods = [(c.method, c.status, str(c.args.get("channel", ""))) for c in fake_slack.calls]
    created = next(i for i, (m, status, _) in enumerate(methods) if m == "conversations.create" and status == 200)
    dm_channels = {c.id for c in fake_slack.channels.values() if c.is_im}
    paged = next(i for i, (m, _, ch) in enumerate(methods) if m == "chat.postMessage" and ch in dm_channels)
    assert paged < created, "the page DM waited for Slack to let the bot create the channel"
    # Once the channel is set up, the page is mentioned there once, after the pinned summary,
    # and the person paged is in the channel.
    await bot.settle()
    incident = await bot.incident(1)
    assert incident.channel_id
    posted = [m for m in fake_slack.messages(incident.channel_id) if m.ephemeral_to is None]
    assert [m.text for m in posted if m.text.startswith("📟")] == ["📟 Paged level 1 (On-call): <@U0LEAD>"]
    summary = next(i for i, m in enumerate(posted) if m.ts == incident.summary_ts)
    mention = next(i for i, m in enumerate(posted) if m.text.startswith("📟"))
    assert summary < mention
    assert "U0LEAD" in fake_slack.channels[incident.channel_id].members


async def test_retry_setup_invites_and_mentions_who_was_paged_and_starts_the_playbook(
    immediate_pager: BotHarness,
) -> None:
    """Channel creation fails: the page goes out anyway; Retry setup catches the channel up."""
    bot, fake_slack = immediate_pager, immediate_pager.fake
    fake_slack.server_error("conversations.create", count=1, status=503)
    await bot.command("declare P1 Checkout is down", channel="C0GENERAL")
    incident = await bot.incident(1)
    assert incident.channel_id is None
    assert bot.deps.escalator is not None
    [page] = await bot.deps.escalator.pages(1)
    assert page.sent_to == ["U0LEAD"], "paging does not wait for the channel"

    await bot.click("incident_retry_setup", "1", channel="C0GENERAL")
    incident = await bot.incident(1)
    assert incident.channel_id
    channel = fake_slack.channels[incident.channel_id]
    assert "U0LEAD" in channel.members
    texts = [m.text for m in fake_slack.messages(incident.channel_id)]
    assert [t for t in texts if t.startswith("📟")] == ["📟 Paged level 1 (On-call): <@U0LEAD>"]
    assert any(e.kind == "playbook" for e in await bot.timeline(1)), "the matching playbook started"
    # A second press changes nothing.
    await bot.click("incident_retry_setup", "1", channel="C0GENERAL")
    texts = [m.text for m in fake_slack.messages(incident.channel_id)]
    assert len([t for t in texts if t.startswith("📟")]) == 1
