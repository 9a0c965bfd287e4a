"""Pages through the Escalator with a FakeClock and an in-memory Pager, on a real database: levels, acks,
resolves, severity changes, failed and repeated pages."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.db import Database
from bot.escalation.oncall import on_call_at
from bot.escalation.pages import planning, queries
from bot.incidents.models import Incident
from bot.timeline import service as timeline
from tests.escalation.conftest import (
    STANDARD,
    FakePager,
    MakeEscalator,
    Start,
    acknowledge,
    config,
    declare,
    page_rows,
    resolve,
    set_severity,
)

GHOST = {"levels": [{"name": "Ghost", "after": "0m", "notify": ["U0GHOST"]}]}


async def test_levels_fire_in_order_at_their_delays(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    incident = await declare(db, clock)
    assert incident.id is not None
    oncall_user = on_call_at(escalator.config.oncall, clock.now())

    report = await escalator.incident_declared(incident.id)
    assert report.pages == 1
    assert pager.paged() == [(1, oncall_user)]
    assert pager.invites == [("C0INC1", [oncall_user])]
    assert pager.levels() == [1]

    clock.advance(timedelta(minutes=14, seconds=59))
    assert (await escalator.run_due()).pages == 0
    clock.advance(timedelta(seconds=1))
    assert (await escalator.run_due()).pages == 1
    assert pager.paged()[-1] == (2, "U0LEAD")

    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    clock.advance(timedelta(hours=2))
    await escalator.run_due()
    assert pager.paged() == [(1, oncall_user), (2, "U0LEAD"), (3, "U0CTO")]
    assert pager.levels() == [1, 2, 3]
    assert await page_rows(db, incident.id) == [(1, 0, True, False), (2, 0, True, False), (3, 0, True, False)]

    async with db.session() as session:
        rows = await queries.pages(session, incident_id=incident.id)
        events = await timeline.events(session, incident_id=incident.id, kinds=["page"])
    assert [row.sent_to for row in rows] == [[oncall_user], ["U0LEAD"], ["U0CTO"]]
    assert not any(row.late for row in rows)
    assert [e.data["level"] for e in events] == [1, 2, 3]
    assert events[1].text == "Paged level 2 (Team lead)"


async def test_the_next_due_time_is_the_next_level(clock: FakeClock, start: Start) -> None:
    declared = clock.now()
    escalator, incident_id = await start()
    # Level 2 and the P1 status reminder are both due 15 minutes after the declaration.
    assert await escalator.next_due() == declared + timedelta(minutes=15)


async def test_declaring_twice_plans_once(db: Database, pager: FakePager, start: Start) -> None:
    escalator, incident_id = await start()
    await escalator.incident_declared(incident_id)
    assert len(await page_rows(db, incident_id)) == 3
    assert len(pager.dms) == 1


async def test_p3_pages_only_level_one(db: Database, clock: FakeClock, pager: FakePager, start: Start) -> None:
    escalator, incident_id = await start(severity="P3")
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.levels() == [1]
    assert await page_rows(db, incident_id) == [(1, 0, True, False)]


async def test_ack_with_stop_on_resolve_is_recorded_and_escalation_continues(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=3))
    result = await escalator.incident_acknowledged(incident_id, user="U0BOB")
    assert [p.level for p in result.acknowledged] == [1] and result.cancelled == []
    clock.advance(timedelta(minutes=12))
    await escalator.run_due()
    assert pager.levels() == [1, 2]
    async with db.session() as session:
        first = (await queries.pages(session, incident_id=incident_id))[0]
    assert first.acknowledged_by == "U0BOB"
    assert first.acknowledged_at is not None and first.sent_at is not None
    assert first.acknowledged_at - first.sent_at == timedelta(minutes=3)


async def test_ack_with_stop_on_ack_cancels_the_rest(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(config(escalation={**STANDARD["escalation"], "stop_on": "ack"}))
    clock.advance(timedelta(minutes=16))
    await escalator.run_due()
    clock.advance(timedelta(minutes=1))
    await acknowledge(db, clock, incident_id, "U0LEAD")
    result = await escalator.incident_acknowledged(incident_id, user="U0LEAD")
    assert [p.level for p in result.cancelled] == [3]
    assert {p.level for p in result.acknowledged} == {1, 2}
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.levels() == [1, 2]
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, True, False), (3, 0, False, True)]
    async with db.session() as session:
        events = await timeline.events(session, incident_id=incident_id, kinds=["page"])
    assert events[-1].data["action"] == "cancelled"
    assert "acknowledged by <@U0LEAD>" in events[-1].text


async def test_a_page_due_after_an_ack_is_not_sent_even_if_the_signal_was_lost(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(config(escalation={**STANDARD["escalation"], "stop_on": "ack"}))
    await acknowledge(db, clock, incident_id, "U0BOB")
    # No incident_acknowledged() call: the send-time check must stop level 2 on its own.
    clock.advance(timedelta(minutes=20))
    await escalator.run_due()
    assert pager.levels() == [1]
    assert (await page_rows(db, incident_id))[1] == (2, 0, False, True)


async def test_resolve_cancels_everything_pending(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=5))
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id, actor="U0ALICE")
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.levels() == [1]
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, False, True), (3, 0, False, True)]
    assert pager.reminders == []  # the status reminder went with it


async def test_raising_severity_adds_levels_and_pages_overdue_ones_now(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    declared = clock.now()
    escalator, incident_id = await start(severity="P3")
    clock.advance(timedelta(minutes=20))
    await set_severity(db, clock, incident_id, "P1")
    report = await escalator.severity_changed(incident_id)
    assert report.pages == 1
    assert pager.levels() == [1, 2]
    async with db.session() as session:
        rows = await queries.pages(session, incident_id=incident_id)
    assert rows[1].due_at == clock.now() and not rows[1].late  # due now, not "late"
    assert rows[2].due_at == declared + timedelta(minutes=30)
    clock.advance(timedelta(minutes=10))
    await escalator.run_due()
    assert pager.levels() == [1, 2, 3]


async def test_lowering_severity_cancels_levels_and_raising_it_again_restores_them(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=5))
    await set_severity(db, clock, incident_id, "P4")
    await escalator.severity_changed(incident_id)
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, False, True), (3, 0, False, True)]
    clock.advance(timedelta(minutes=5))
    await set_severity(db, clock, incident_id, "P2")
    await escalator.severity_changed(incident_id)
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, False, False), (3, 0, False, False)]
    clock.advance(timedelta(minutes=5))  # 15 minutes after the declaration
    await escalator.run_due()
    assert pager.levels() == [1, 2]


async def test_a_re_plan_for_a_severity_changed_since_it_read_it_cancels_nothing(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """P1 -> P4 -> P1 in quick succession, the first handler slow (SQLite's writer queue in a
    storm): it must not cancel levels the incident, P1 again by then, still pages."""
    escalator, incident_id = await start()
    clock.advance(timedelta(minutes=5))
    await set_severity(db, clock, incident_id, "P4")
    async with db.session() as session:
        stale = await session.get(Incident, incident_id)  # the first handler reads P4 ...
        assert stale is not None and stale.severity == "P4"
        await set_severity(db, clock, incident_id, "P1")  # ... the correction commits, its handler
        await escalator.severity_changed(incident_id)  # finds nothing to restore, and then the first one:
        await planning.replan(session, incident=stale, escalation=escalator.config.escalation, now=clock.now())
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, False, False), (3, 0, False, False)]


async def test_levels_that_fall_due_together_are_paged_in_level_order(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(severity="P3")
    clock.advance(timedelta(minutes=40))
    await set_severity(db, clock, incident_id, "P1")
    assert (await escalator.severity_changed(incident_id)).pages == 2  # levels 2 and 3, both due now
    assert pager.levels() == [1, 2, 3]


async def test_a_failed_dm_is_reported_and_the_next_level_still_fires(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    cfg = config(
        escalation={
            "levels": [
                {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
                {"name": "Team lead", "after": "15m", "notify": ["U0GHOST"]},
                {"name": "CTO", "after": "30m", "notify": ["U0CTO", "U0NOBODY"]},
            ]
        }
    )
    escalator, incident_id = await start(cfg)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    level_two = pager.reports[-1][1]
    assert level_two.page.level == 2
    assert level_two.paged == [] and level_two.failed == {"U0GHOST": "user_not_found"}
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    level_three = pager.reports[-1][1]
    assert level_three.page.level == 3
    assert level_three.paged == ["U0CTO"] and level_three.failed == {"U0NOBODY": "user_not_found"}
    assert pager.invites[-1] == ("C0INC1", ["U0CTO"])
    async with db.session() as session:
        rows = await queries.pages(session, incident_id=incident_id)
        events = await timeline.events(session, incident_id=incident_id, kinds=["page"])
    assert rows[1].sent_at is not None and rows[1].failed == {"U0GHOST": "user_not_found"}
    assert events[1].text == "Page for level 2 (Team lead) reached nobody"


async def test_groups_handles_and_an_empty_oncall_are_resolved_or_reported(
    clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.groups = {"S0LEADS": ["U0LEAD", "U0BOB"], "S0EMPTY": []}
    pager.handles = {"cto": "U0CTO"}
    cfg = BotConfig.model_validate(
        {
            "escalation": {
                "levels": [
                    {"name": "Everyone", "after": "0m", "notify": ["oncall", "S0LEADS", "@cto", "U0BOB", "S0EMPTY"]},
                    {"name": "Nobody", "after": "1m", "notify": ["@ghost", "S0MISSING"]},
                ]
            }
        }
    )
    escalator, incident_id = await start(cfg)
    report = pager.reports[0][1]
    assert report.paged == ["U0LEAD", "U0BOB", "U0CTO"]  # U0BOB once, though named twice
    assert set(report.unresolved) == {"oncall", "S0EMPTY"}
    assert "oncall.rotation" in report.unresolved["oncall"]
    clock.advance(timedelta(minutes=1))
    await escalator.run_due()
    nobody = pager.reports[-1][1]
    assert nobody.paged == [] and set(nobody.unresolved) == {"@ghost", "S0MISSING"}
    assert "no_such_subteam" in nobody.unresolved["S0MISSING"]


async def test_a_page_that_reached_nobody_is_retried_then_recorded(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.fail_reports = 5  # the channel is unreachable too: nobody heard of this page
    escalator, incident_id = await start(config(escalation=GHOST))
    assert await page_rows(db, incident_id) == [(1, 0, False, False)]
    assert await escalator.next_due() == clock.now() + escalator.retry_backoff
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert await page_rows(db, incident_id) == [(1, 0, False, False)]
    clock.advance(escalator.retry_backoff * 2)
    await escalator.run_due()  # third attempt: give up and record it
    async with db.session() as session:
        (row,) = await queries.pages(session, incident_id=incident_id)
    assert row.sent_at is not None and row.attempts == 3
    assert row.error and "channel_not_found" in row.error


async def test_channel_mention_is_retried_when_nobody_got_a_dm_but_recovered_later(
    clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.fail_reports = 1
    escalator, incident_id = await start(config(escalation=GHOST))
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.levels() == [1]
    assert pager.reports[0][1].failed == {"U0GHOST": "user_not_found"}


async def test_the_last_level_repeats_until_resolved(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(config(escalation={**STANDARD["escalation"], "repeat_last_every": "10m"}))
    for _ in range(4):  # 15, 30, 40, 50 min after the declaration
        clock.advance(timedelta(minutes=10) if pager.levels()[-1:] == [3] else timedelta(minutes=15))
        await escalator.run_due()
    assert [(r.page.level, r.page.repeat) for _, r in pager.reports] == [(1, 0), (2, 0), (3, 0), (3, 1), (3, 2)]
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id)
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert len(pager.reports) == 5
    assert (await page_rows(db, incident_id))[-1] == (3, 3, False, True)


async def test_a_page_with_no_channel_still_dms(db: Database, pager: FakePager, start: Start) -> None:
    escalator, incident_id = await start(channel_id=None)
    assert len(pager.dms) == 1 and pager.reports == [] and pager.invites == []
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, False, False), (3, 0, False, False)]


async def test_on_call_view_per_level(clock: FakeClock, make_escalator: MakeEscalator) -> None:
    escalator = make_escalator()
    levels = escalator.on_call()
    assert [level.name for level in levels] == ["On-call engineer", "Team lead", "CTO"]
    assert levels[0].now == (on_call_at(escalator.config.oncall, clock.now()),)
    assert levels[0].next_at is not None and levels[0].next_at > clock.now()
    assert levels[1].now == ("U0LEAD",)


async def test_incident_unknown_or_resolved_is_ignored(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    assert (await escalator.incident_declared(999)).pages == 0
    incident = await declare(db, clock)
    assert incident.id is not None
    await resolve(db, clock, incident.id)
    assert (await escalator.incident_declared(incident.id)).pages == 0
    assert pager.dms == []


async def test_a_bot_yml_that_names_nobody_plans_no_pages_but_keeps_reminders(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(BotConfig())  # the defaults: level 1 is `oncall`, and there is no rotation
    assert not escalator.pages_anyone
    incident = await declare(db, clock)
    assert incident.id is not None
    await escalator.incident_declared(incident.id)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert await page_rows(db, incident.id) == []
    assert pager.reports == [] and [r.kind for _, r in pager.reminders] == ["status_update"]


async def test_a_last_level_sent_late_is_not_repeated_in_the_same_breath(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """The bot was down for two hours: the CTO gets the late page once, and its repeat 10 minutes later."""
    escalator, incident_id = await start(config(escalation={**STANDARD["escalation"], "repeat_last_every": "10m"}))
    clock.advance(timedelta(hours=2))
    await escalator.run_due()
    await escalator.run_due()
    assert [(user, page.level, page.repeat) for user, _, page in pager.dms] == [
        ("U0ALICE", 1, 0),
        ("U0LEAD", 2, 0),
        ("U0CTO", 3, 0),
    ]
    assert await escalator.next_due() == clock.now() + timedelta(minutes=10)
    clock.advance(timedelta(minutes=10))
    await escalator.run_due()
    assert [(user, page.level, page.repeat) for user, _, page in pager.dms][3:] == [("U0CTO", 3, 1)]
