"""Escalation through the real app and the fake Slack: pages by DM and in the channel, levels, severity,
failed DMs, user groups, reminders, /incident oncall, restarts and health."""

from __future__ import annotations

import asyncio
import os
import time
from collections import Counter
from datetime import timedelta

import pytest

from bot.clock import FakeClock, SystemClock
from bot.escalation.oncall import on_call_at
from bot.escalation.pages import queries
from bot.slack.adapters.escalation import PAGE_ACK
from tests.escalation.slack.conftest import (
    CONFIG,
    LEVELS,
    Starter,
    button_values,
    escalator,
    page_dms,
    page_lines,
    scheduler,
    stop_instance,
    tick,
)
from tests.fakes.slack_api import FakeSlack


async def test_declare_pages_the_on_call_engineer_by_dm_and_in_the_channel(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None
    await bot.declare("P1 Checkout is down", user="U0LEAD")
    incident = await bot.incident(1)
    assert incident.channel_id is not None

    (dm,) = page_dms(bot.fake, oncall)
    text = str(dm.blocks)
    assert "INC-1: Checkout is down" in text and "P1" in text and "investigating" in text
    # Level 1 goes out beside the channel's creation (it does not wait for it): on a loaded machine the
    # DM may come first. The link in a later level's DM is checked in the next test.
    assert f"<#{incident.channel_id}>" in text or "_no channel yet_" in text
    assert button_values(dm) == [(PAGE_ACK, f"1:{(await escalator(bot).pages(1))[0].id}")]
    assert page_lines(bot.fake, incident.channel_id) == [f"📟 Paged level 1 (On-call engineer): <@{oncall}>"]
    channel = bot.fake.channels[incident.channel_id]
    assert oncall in channel.members
    pages = [e for e in await bot.timeline(1) if e.kind == "page"]
    assert [(e.data["action"], e.data["level"], e.data["sent_to"]) for e in pages] == [("sent", 1, [oncall])]


async def test_levels_fire_in_order_and_stop_on_resolve(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    await tick(bot, clock, timedelta(minutes=14))
    assert page_dms(bot.fake, "U0LEAD") == []
    await tick(bot, clock, timedelta(minutes=1))
    (dm,) = page_dms(bot.fake, "U0LEAD")
    assert f"<#{incident.channel_id}>" in str(dm.blocks)  # the channel exists by now: the DM links it
    await tick(bot, clock, timedelta(minutes=15))
    assert len(page_dms(bot.fake, "U0CTO")) == 1
    assert [line.split(":")[0] for line in page_lines(bot.fake, incident.channel_id)] == [
        "📟 Paged level 1 (On-call engineer)",
        "📟 Paged level 2 (Team lead)",
        "📟 Paged level 3 (CTO)",
    ]
    assert {"U0LEAD", "U0CTO"} <= bot.fake.channels[incident.channel_id].members


async def test_resolve_cancels_pending_levels_and_the_postmortem_is_chased(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down", user="U0BOB")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    clock.advance(timedelta(minutes=5))
    await bot.command("resolve rolled back", user="U0BOB", channel=incident.channel_id)
    await tick(bot, clock, timedelta(hours=1))
    assert page_dms(bot.fake, "U0LEAD") == [] and page_dms(bot.fake, "U0CTO") == []
    rows = await escalator(bot).pages(1)
    assert [(r.level, r.sent_at is not None, r.cancel_reason) for r in rows] == [
        (1, True, None),
        (2, False, "incident resolved"),
        (3, False, "incident resolved"),
    ]
    await tick(bot, clock, timedelta(hours=23))
    chase = [m.text for m in bot.fake.messages(incident.channel_id) if "post-mortem is not finished" in m.text]
    assert len(chase) == 1 and "<@U0BOB>" in chase[0]


async def test_raising_severity_pages_the_levels_it_now_needs(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P3 Slow search")
    incident = await bot.incident(1)
    await tick(bot, clock, timedelta(minutes=20))
    assert page_dms(bot.fake, "U0LEAD") == []
    await bot.command("sev P1", channel=incident.channel_id or "")
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    await tick(bot, clock, timedelta(minutes=10))
    assert len(page_dms(bot.fake, "U0CTO")) == 1


async def test_lowering_severity_cancels_pending_levels(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    await bot.command("sev P4", channel=incident.channel_id or "")
    await tick(bot, clock, timedelta(hours=1))
    assert page_dms(bot.fake, "U0LEAD") == [] and page_dms(bot.fake, "U0CTO") == []


async def test_a_failed_dm_is_reported_in_the_channel_and_the_next_level_fires(
    start: Starter, clock: FakeClock
) -> None:
    levels = [LEVELS[0], {"name": "Team lead", "after": "15m", "notify": ["U0GHOST"]}, LEVELS[2]]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    await tick(bot, clock, timedelta(minutes=15))
    report = page_lines(bot.fake, incident.channel_id)[-1]
    assert "level 2 (Team lead) reached nobody" in report
    assert "Could not DM `U0GHOST`: user_not_found" in report
    await tick(bot, clock, timedelta(minutes=15))
    assert len(page_dms(bot.fake, "U0CTO")) == 1
    assert page_lines(bot.fake, incident.channel_id)[-1] == "📟 Paged level 3 (CTO): <@U0CTO>"


async def test_a_user_group_is_paged_member_by_member(start: Starter, fake_slack: FakeSlack, clock: FakeClock) -> None:
    fake_slack.add_usergroup("S0LEADS", "leads", ["U0LEAD", "U0CTO"])
    bot = await start({**CONFIG, "escalation": {"levels": [{"name": "Leads", "after": "0m", "notify": ["S0LEADS"]}]}})
    await bot.declare("P1 Checkout is down")
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_dms(bot.fake, "U0CTO")) == 1


async def test_a_user_group_named_by_its_handle_is_paged_member_by_member(
    start: Starter, fake_slack: FakeSlack
) -> None:
    """`python -m bot check` accepts a user group's @handle in `notify`; the page must reach its members."""
    fake_slack.add_usergroup("S0LEADS", "leads", ["U0LEAD", "U0CTO"])
    bot = await start({**CONFIG, "escalation": {"levels": [{"name": "Leads", "after": "0m", "notify": ["@leads"]}]}})
    await bot.declare("P1 Checkout is down")
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_dms(bot.fake, "U0CTO")) == 1


async def test_a_silent_p1_reminds_the_channel_and_the_commander(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down", user="U0BOB")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    await tick(bot, clock, timedelta(minutes=10))
    await bot.command("update identified bad deploy", user="U0BOB", channel=incident.channel_id)
    await tick(bot, clock, timedelta(minutes=10))
    reminders = [m.text for m in bot.fake.messages(incident.channel_id) if m.text.startswith("⏰")]
    assert reminders == []
    await tick(bot, clock, timedelta(minutes=5))
    reminders = [m.text for m in bot.fake.messages(incident.channel_id) if m.text.startswith("⏰")]
    assert len(reminders) == 1 and "<@U0BOB>" in reminders[0] and "no status update for 15m" in reminders[0]


async def test_oncall_command_shows_now_and_next_per_level(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    config = bot.deps.settings.config.oncall
    now_user = on_call_at(config, clock.now())
    await bot.command("oncall")
    reply = bot.last_reply()
    assert "weekly rotation of 3" in reply and "Europe/London" in reply
    assert f"*1. On-call engineer* · after 0m · now <@{now_user}> · next <@" in reply
    assert "*2. Team lead* · after 15m · now <@U0LEAD>" in reply
    assert "P3/P4: 1 level (0m), stops on resolve" in str(bot.fake.responses[-1]["blocks"])


async def test_restart_sends_overdue_pages_once_marked_late(start: Starter, clock: FakeClock) -> None:
    first = await start()
    await first.declare("P1 Checkout is down")
    incident = await first.incident(1)
    assert incident.channel_id is not None
    await stop_instance(start, first)  # the bot goes down with levels 2 and 3 pending

    clock.advance(timedelta(minutes=40))
    second = await start()  # on start: overdue pages go out at once
    await second.settle()
    (lead,) = page_dms(second.fake, "U0LEAD")
    (cto,) = page_dms(second.fake, "U0CTO")
    assert "late by 25m 00s" in str(lead.blocks) and "late by 10m 00s" in str(cto.blocks)
    rows = await escalator(second).pages(1)
    assert [(r.level, r.late, r.late_seconds) for r in rows] == [(1, False, 0.0), (2, True, 1500.0), (3, True, 600.0)]
    assert "late by 25m 00s" in page_lines(second.fake, incident.channel_id)[1]
    await stop_instance(start, second)

    third = await start()
    await third.settle()
    assert len(page_dms(third.fake, "U0LEAD")) == 1 and len(page_dms(third.fake, "U0CTO")) == 1


async def test_health_reports_the_scheduler(start: Starter) -> None:
    bot = await start()
    response = await bot.http.get(f"{bot.url}/health")
    assert response.json()["checks"]["scheduler:running"][0]["status"] == "pass"


async def test_levels_arrive_on_the_wall_clock(start: Starter) -> None:
    fast = [
        {"name": "On-call engineer", "after": "0s", "notify": ["oncall"]},
        {"name": "Team lead", "after": "1s", "notify": ["U0LEAD"]},
        {"name": "CTO", "after": "2s", "notify": ["U0CTO"]},
    ]
    bot = await start({**CONFIG, "escalation": {"levels": fast}}, clock_=SystemClock())
    started = time.monotonic()
    await bot.declare("P1 Checkout is down")
    for _ in range(200):
        if page_dms(bot.fake, "U0CTO"):
            break
        await asyncio.sleep(0.05)
    elapsed = time.monotonic() - started
    assert len(page_dms(bot.fake, "U0LEAD")) == 1 and len(page_dms(bot.fake, "U0CTO")) == 1
    assert 1.5 <= elapsed < 10
    lead_ts, cto_ts = float(page_dms(bot.fake, "U0LEAD")[0].ts), float(page_dms(bot.fake, "U0CTO")[0].ts)
    assert lead_ts < cto_ts


@pytest.mark.postgres_only
@pytest.mark.skipif(os.environ.get("TEST_DATABASE") != "postgresql", reason="replica race needs PostgreSQL")
async def test_two_app_instances_on_one_postgresql_send_each_page_once(start: Starter, clock: FakeClock) -> None:
    a = await start()
    for n in range(6):
        await a.declare(f"P1 Outage number {n}")
    # The second instance starts after the declarations only because the test harness tracks
    # background work per loop; for the bot it is just another replica on the same database.
    b = await start()
    assert (await scheduler(b).run()).pages == 0  # level 1 went out already, nothing else is due yet
    clock.advance(timedelta(minutes=31))
    await asyncio.gather(*(scheduler(x).run() for x in (a, b, a, b)))
    sent: Counter[tuple[str, str]] = Counter()
    for user in ("U0ALICE", "U0BOB", "U0CAROL", "U0LEAD", "U0CTO"):
        for message in page_dms(a.fake, user):
            sent[(user, button_values(message)[0][1].split(":")[0])] += 1
    assert sum(sent.values()) == 18  # 6 incidents x 3 levels
    assert set(sent.values()) == {1}
    async with a.deps.db.session() as session:
        for number in range(1, 7):
            rows = await queries.pages(session, incident_id=number)
            assert [r.attempts for r in rows] == [1, 1, 1]


async def test_health_warns_when_pages_are_stuck(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("P1 Checkout is down")
    clock.advance(timedelta(minutes=21))  # level 2 due 6 minutes ago, and nothing ran
    body = (await bot.http.get(f"{bot.url}/health")).json()
    check = body["checks"]["escalation:timers"][0]
    assert check["status"] == "warn" and "overdue since" in check["output"]
    await scheduler(bot).run()
    body = (await bot.http.get(f"{bot.url}/health")).json()
    assert body["checks"]["escalation:timers"][0]["status"] == "pass"


async def test_a_5xx_on_a_page_dm_is_retried_and_the_channel_says_so(start: Starter, clock: FakeClock) -> None:
    levels = [{"name": "Team lead", "after": "1m", "notify": ["U0LEAD"]}]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    await bot.declare("P1 Checkout is down", user="U0BOB")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    bot.fake.server_error("chat.postMessage", count=1, status=503)  # the page DM
    await tick(bot, clock, timedelta(minutes=1))
    assert page_dms(bot.fake, "U0LEAD") == []
    assert page_lines(bot.fake, incident.channel_id) == [
        "📟 ⚠️ Paging level 1 (Team lead): Slack failed, trying again\n"
        "⏳ Could not reach <@U0LEAD> yet (http_503); trying again in 30s"
    ]
    assert "U0LEAD" in bot.fake.channels[incident.channel_id].members  # so the mention reaches them
    await tick(bot, clock, timedelta(seconds=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    assert page_lines(bot.fake, incident.channel_id)[-1] == "📟 Paged level 1 (Team lead) (attempt 2): <@U0LEAD>"
    await tick(bot, clock, timedelta(minutes=30))
    assert len(page_dms(bot.fake, "U0LEAD")) == 1
    (row,) = await escalator(bot).pages(1)
    assert row.sent_to == ["U0LEAD"] and row.attempts == 2 and not row.late


async def test_a_user_group_is_read_when_the_page_goes_out_and_its_members_invited(
    start: Starter, fake_slack: FakeSlack, clock: FakeClock
) -> None:
    fake_slack.add_usergroup("S0LEADS", "leads", ["U0LEAD"])
    levels = [LEVELS[0], {"name": "Leads", "after": "15m", "notify": ["S0LEADS"]}]
    bot = await start({**CONFIG, "escalation": {"levels": levels}})
    await bot.declare("P1 Checkout is down")
    incident = await bot.incident(1)
    assert incident.channel_id is not None
    fake_slack.add_usergroup("S0LEADS", "leads", ["U0CTO", "U0CAROL"])  # the group changed since bot.yml was read
    await tick(bot, clock, timedelta(minutes=15))
    assert [c.args["usergroup"] for c in bot.fake.calls_to("usergroups.users.list")] == ["S0LEADS"]
    assert page_dms(bot.fake, "U0LEAD") == []
    assert len(page_dms(bot.fake, "U0CTO")) == 1 and len(page_dms(bot.fake, "U0CAROL")) == 1
    assert {"U0CTO", "U0CAROL"} <= bot.fake.channels[incident.channel_id].members
    assert page_lines(bot.fake, incident.channel_id)[-1] == "📟 Paged level 2 (Leads): <@U0CTO>, <@U0CAROL>"


async def test_a_persons_dm_channel_is_opened_once_and_reopened_when_slack_lost_it(start: Starter) -> None:
    """conversations.open is tier 3 (~50 a minute): a storm paging the same people must not spend it per page."""
    config = {"escalation": {"levels": [{"name": "Team lead", "after": "0s", "notify": ["U0LEAD"]}]}}
    bot = await start(config)
    await bot.declare("P1 Checkout is down")
    await bot.declare("P1 Search is down")
    assert len(page_dms(bot.fake, "U0LEAD")) == 2
    assert len(bot.fake.calls_to("conversations.open")) == 1

    [dm] = [c.id for c in bot.fake.channels.values() if c.is_im and "U0LEAD" in c.members]
    del bot.fake.channels[dm]  # Slack lost the remembered DM: posting there says channel_not_found
    await bot.declare("P1 Login is down")
    assert [m.text.split(" [")[0] for m in page_dms(bot.fake, "U0LEAD")] == ["🚨 Paged for INC-3"]  # in the new DM
    assert len(bot.fake.calls_to("conversations.open")) == 2
    [page] = await escalator(bot).pages(3)
    assert page.sent_to == ["U0LEAD"] and page.attempts == 1


async def test_a_private_incidents_page_names_no_title_outside_its_channel(start: Starter, clock: FakeClock) -> None:
    bot = await start()
    await bot.declare("private P1 Leaked credentials", user="U0LEAD")
    incident = await bot.incident(1)
    oncall = on_call_at(bot.deps.settings.config.oncall, clock.now())
    assert oncall is not None and incident.private
    (dm,) = page_dms(bot.fake, oncall)
    assert "Leaked credentials" not in f"{dm.text} {dm.blocks}"
    assert "INC-1: a private incident (details in its channel)" in str(dm.blocks)
    assert oncall in bot.fake.channels[incident.channel_id or ""].members  # invited: the title is read there
    await bot.click(*button_values(dm)[0], user=oncall, channel=dm.channel, message_ts=dm.ts)
    assert (await bot.incident(1)).acknowledged_by == oncall
    assert "Leaked credentials" not in f"{dm.text} {dm.blocks}"
