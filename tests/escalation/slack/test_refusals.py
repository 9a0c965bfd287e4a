"""Slack refusing part of a page or a reminder: one person Slack will not add to the channel, or a channel
that was archived (or the bot removed from it) while the incident still needs people reminded."""

from __future__ import annotations

from datetime import timedelta

from sqlmodel import select

from bot.clock import FakeClock
from bot.escalation.models import PageTarget, TargetKind
from bot.incidents.models import Incident
from tests.escalation.slack.conftest import CONFIG, LEVELS, Starter, escalator, page_dms, page_lines, tick
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness


async def _leads_paged_at_level_2(start: Starter, fake_slack: FakeSlack) -> tuple[BotHarness, Incident]:
    """INC-1 declared; its level 2, in 15 minutes, pages the user group S0LEADS (U0CTO, U0CAROL)."""
    fake_slack.add_usergroup("S0LEADS", "leads", ["U0CTO", "U0CAROL"])
    levels = [LEVELS[0], {"name": "Leads", "after": "15m", "notify": ["S0LEADS"]}]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    await bot.declare("P1 Checkout is down")
    return bot, await bot.incident(1)


async def test_one_person_slack_will_not_invite_does_not_keep_the_others_out_of_the_channel(
    start: Starter, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    bot, incident = await _leads_paged_at_level_2(start, fake_slack)
    assert incident.channel_id is not None
    # The first lead is a guest Slack will not add to this channel; the second one must still be added.
    fake_slack.fail("conversations.invite", "user_is_restricted")
    await tick(bot, clock, timedelta(minutes=15))
    assert len(page_dms(bot.fake, "U0CTO")) == 1 and len(page_dms(bot.fake, "U0CAROL")) == 1
    members = bot.fake.channels[incident.channel_id].members
    assert "U0CAROL" in members, "the page told U0CAROL to join, but they were never added"
    assert "U0CTO" not in members
    page = (await escalator(bot).pages(1))[-1]
    assert page.error and "U0CTO" in page.error and "user_is_restricted" in page.error


async def test_a_reminder_for_an_archived_channel_reaches_the_commander_by_dm(
    start: Starter, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down", user="U0BOB")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    fake_slack.channels[incident.channel_id].archived = True  # someone archived it while the incident is open
    await tick(bot, clock, timedelta(minutes=15))
    reminders = [m.text for m in fake_slack.dms("U0BOB") if m.text.startswith("⏰")]
    assert len(reminders) == 1 and "INC-1 has had no status update for 15m" in reminders[0]
    assert "it was archived or the bot removed" in reminders[0]


async def test_the_postmortem_chase_reaches_the_resolver_by_dm_once_the_channel_is_archived(
    start: Starter, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down", user="U0BOB")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    await bot.command("resolve rolled back", user="U0BOB", channel=incident.channel_id)
    fake_slack.channels[incident.channel_id].archived = True  # tidied away by hand after the resolve
    await tick(bot, clock, timedelta(hours=24))
    chases = [m.text for m in fake_slack.dms("U0BOB") if m.text.startswith("📝")]
    assert len(chases) == 1 and "its post-mortem is not finished" in chases[0]


async def test_slack_failing_partway_through_the_invites_records_only_who_was_added_and_retries_the_rest(
    start: Starter, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    bot, incident = await _leads_paged_at_level_2(start, fake_slack)
    assert incident.channel_id is not None
    members = bot.fake.channels[incident.channel_id].members
    invites_before = len(fake_slack.calls_to("conversations.invite"))
    # The first lead is added; then Slack has an outage, so the second one is not.
    fake_slack.server_error("conversations.invite", after=1)
    await tick(bot, clock, timedelta(minutes=15))
    assert "U0CTO" in members and "U0CAROL" not in members
    page = (await escalator(bot).pages(1))[-1]
    async with bot.deps.db.session() as session:
        rows = (await session.exec(select(PageTarget).where(PageTarget.page_id == page.id))).all()
    invited = {row.recipient: row.invited for row in rows if row.kind == TargetKind.USER}
    assert invited == {"U0CTO": True, "U0CAROL": False}, "U0CAROL is recorded as invited but was never added"

    await tick(bot, clock, timedelta(seconds=31))  # the page's retry, after its back-off
    assert "U0CAROL" in members, "U0CAROL was told to join the channel but never added"
    invites = [c.args["users"] for c in fake_slack.calls_to("conversations.invite")[invites_before:]]
    assert invites == ["U0CTO", "U0CAROL", "U0CAROL"]
    assert len(page_dms(bot.fake, "U0CTO")) == 1 and len(page_dms(bot.fake, "U0CAROL")) == 1
    page = (await escalator(bot).pages(1))[-1]
    assert page.sent_at is not None


async def test_a_failed_dm_at_the_last_level_is_not_said_to_leave_a_next_level(
    start: Starter, clock: FakeClock
) -> None:
    """U0GONE is no Slack user: the mention says so, and whether another level will still be paged."""
    levels = [
        {"name": "Team lead", "after": "1m", "notify": ["U0LEAD", "U0GONE"]},
        {"name": "CTO", "after": "15m", "notify": ["U0CTO", "U0GONE"]},
    ]
    bot = await start({**CONFIG, "escalation": {"levels": levels, "severity": {"P3": {"levels": 1}}}})
    await bot.declare("P1 Checkout is down", user="U0BOB")
    await bot.declare("P3 Search is slow", user="U0BOB")
    await tick(bot, clock, timedelta(minutes=1))
    await tick(bot, clock, timedelta(minutes=15))
    last = "This is the last escalation level: nobody further is paged."
    following = "The next escalation level still fires on time unless the incident is stopped."
    for number, ends in [(1, [following, last]), (2, [last])]:
        channel = (await bot.incident(number)).channel_id
        assert channel is not None
        lines = page_lines(bot.fake, channel)
        assert all("Could not DM `U0GONE`: user_not_found" in line for line in lines)
        assert [line.splitlines()[-1] for line in lines] == ends
