"""Pages through the Escalator with a FakeClock and an in-memory Pager, on a real database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.db import Database
from bot.escalation import leases
from bot.escalation.models import Page, TargetKind, TargetState
from bot.escalation.oncall import on_call_at
from bot.escalation.pages import planning, queries, writes
from bot.escalation.pages import targets as recipient_rows
from bot.exceptions import ChatError
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
    resolve,
    set_severity,
)

GHOST = {"levels": [{"name": "Ghost", "after": "0m", "notify": ["U0GHOST"]}]}


async def page_rows(db: Database, incident_id: int) -> list[tuple[int, int, bool, bool]]:
    """(level, repeat, sent, cancelled) per row."""
    async with db.session() as session:
        rows = await queries.pages(session, incident_id=incident_id)
    return [(r.level, r.repeat, r.sent_at is not None, r.cancelled_at is not None) for r in rows]


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


# --- transient DM failures: retried for the people not reached, exactly once each ------------------


def failing_dms(failures: dict[str, list[str]]) -> Callable[[str], None]:
    """An `on_dm` hook: the next DMs to a user fail with these Slack codes, one per DM, in order."""

    def on_dm(user: str) -> None:
        codes = failures.get(user) or []
        if codes:
            raise ChatError(f"DM to {user} failed", step="page", code=codes.pop(0))

    return on_dm


def two_people() -> BotConfig:
    return config(escalation={"levels": [{"name": "Leads", "after": "0m", "notify": ["U0LEAD", "U0CTO"]}]})


async def page_targets(db: Database, incident_id: int) -> dict[str, tuple[str, int]]:
    """recipient -> (state, DM attempts) for the incident's first page."""
    async with db.session() as session:
        (page, *_) = await queries.pages(session, incident_id=incident_id)
        assert page.id is not None
        rows = await recipient_rows.targets(session, page_id=page.id)
    return {row.recipient: (row.state, row.attempts) for row in rows if row.kind == "user"}


async def test_a_5xx_on_one_dm_retries_only_that_person(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    pager.on_dm = failing_dms({"U0CTO": ["http_503"]})
    escalator = make_escalator(two_people())
    incident = await declare(db, clock)
    assert incident.id is not None
    assert (await escalator.incident_declared(incident.id)).pages == 0  # not finished: the CTO is owed a DM
    assert pager.paged() == [(1, "U0LEAD")]
    (first,) = [r for _, r in pager.reports]
    assert first.paged == ["U0LEAD"] and first.failed == {} and first.retrying == {"U0CTO": "http_503"}
    assert first.retry_in == escalator.retry_backoff
    assert pager.invites == [("C0INC1", ["U0LEAD", "U0CTO"])]  # the mention reaches the CTO meanwhile
    assert await page_rows(db, incident.id) == [(1, 0, False, False)]
    assert await escalator.next_due() == clock.now() + escalator.retry_backoff

    clock.advance(escalator.retry_backoff)
    assert (await escalator.run_due()).pages == 1
    assert pager.paged() == [(1, "U0LEAD"), (1, "U0CTO")]  # the lead is not paged again
    second = pager.reports[-1][1]
    assert second.paged == ["U0CTO"] and second.attempt == 2 and second.retrying == {}
    assert len(pager.invites) == 1  # both were invited already
    async with db.session() as session:
        (row,) = await queries.pages(session, incident_id=incident.id)
        (event,) = await timeline.events(session, incident_id=incident.id, kinds=["page"])
    assert row.sent_at is not None and row.sent_to == ["U0LEAD", "U0CTO"] and row.failed == {}
    assert row.attempts == 2 and not row.late and row.late_seconds == 0.0  # a Slack retry is not "late"
    assert event.data["sent_to"] == ["U0LEAD", "U0CTO"]
    assert await page_targets(db, incident.id) == {"U0LEAD": ("sent", 1), "U0CTO": ("sent", 2)}

    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert len(pager.dms) == 2


async def test_a_dm_that_keeps_failing_is_given_up_after_the_last_attempt(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.on_dm = failing_dms({"U0CTO": ["unreachable"] * 10})
    escalator, incident_id = await start(two_people())
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert await page_rows(db, incident_id) == [(1, 0, False, False)]
    clock.advance(escalator.retry_backoff * 2)
    assert (await escalator.run_due()).pages == 1
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.paged() == [(1, "U0LEAD")]
    assert await page_targets(db, incident_id) == {"U0LEAD": ("sent", 1), "U0CTO": ("failed", 3)}
    async with db.session() as session:
        (row,) = await queries.pages(session, incident_id=incident_id)
    assert row.attempts == 3 and row.sent_to == ["U0LEAD"]
    assert row.failed == {"U0CTO": "gave up after 3 attempts: unreachable"}
    last = pager.reports[-1][1]
    assert last.paged == [] and last.failed == {"U0CTO": "gave up after 3 attempts: unreachable"}
    assert last.retrying == {}
    assert len(pager.reports) == 2  # the first mention, and the give-up; the silent middle retry posts nothing


async def test_a_permanent_dm_error_is_not_retried(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    pager.on_dm = failing_dms({"U0CTO": ["user_disabled"]})
    escalator = make_escalator(two_people())
    incident = await declare(db, clock)
    assert incident.id is not None
    assert (await escalator.incident_declared(incident.id)).pages == 1
    assert pager.reports[0][1].failed == {"U0CTO": "user_disabled"} and pager.reports[0][1].retrying == {}
    assert pager.invites == [("C0INC1", ["U0LEAD"])]
    assert await page_targets(db, incident.id) == {"U0LEAD": ("sent", 1), "U0CTO": ("failed", 1)}


async def test_resolving_while_a_retry_waits_records_who_was_paged_and_dms_nobody_else(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.on_dm = failing_dms({"U0CTO": ["http_500"]})
    escalator, incident_id = await start(two_people())
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id)
    assert await page_rows(db, incident_id) == [(1, 0, False, False)]  # not cancelled: it reached the lead
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.paged() == [(1, "U0LEAD")]
    async with db.session() as session:
        (row,) = await queries.pages(session, incident_id=incident_id)
        events = await timeline.events(session, incident_id=incident_id, kinds=["page"])
    assert row.sent_at is not None and row.cancelled_at is None
    assert row.sent_to == ["U0LEAD"] and row.failed == {"U0CTO": "not paged: incident resolved"}
    assert [e.data["action"] for e in events] == ["sent"]


async def test_resolving_before_anyone_was_reached_cancels_the_retry(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.on_dm = failing_dms({"U0LEAD": ["http_500"], "U0CTO": ["http_500"]})
    escalator, incident_id = await start(two_people())
    await resolve(db, clock, incident_id)
    await escalator.incident_resolved(incident_id)
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.dms == []
    assert await page_rows(db, incident_id) == [(1, 0, False, True)]


async def test_a_user_group_that_cannot_be_read_for_now_is_read_again_on_the_retry(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    pager.groups = {"S0LEADS": ["U0LEAD", "U0BOB"]}
    reads = 0
    real = pager.group_members

    async def flaky(*, group_id: str) -> list[str]:
        nonlocal reads
        reads += 1
        if reads == 1:
            raise ChatError("read the user group: Slack answered HTTP 502", step="group", code="http_502")
        return await real(group_id=group_id)

    pager.group_members = flaky  # type: ignore[method-assign]
    cfg = config(escalation={"levels": [{"name": "Leads", "after": "0m", "notify": ["U0CTO", "S0LEADS"]}]})
    escalator, incident_id = await start(cfg)
    assert pager.paged() == [(1, "U0CTO")]
    assert set(pager.reports[0][1].retrying) == {"S0LEADS"}
    # The membership changed before the retry: the group is read at send time.
    pager.groups["S0LEADS"] = ["U0LEAD", "U0CAROL", "U0CTO"]
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.paged() == [(1, "U0CTO"), (1, "U0LEAD"), (1, "U0CAROL")]  # the CTO once, though in the group
    assert pager.invites[-1] == ("C0INC1", ["U0LEAD", "U0CAROL"])
    async with db.session() as session:
        (row,) = await queries.pages(session, incident_id=incident_id)
    assert row.sent_to == ["U0CTO", "U0LEAD", "U0CAROL"] and row.failed == {}


async def test_two_senders_of_one_page_never_dm_a_person_twice(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    """A sender whose lease ran out while Slack hung, and the one that took the page over."""
    escalator = make_escalator(two_people())
    incident = await declare(db, clock)
    assert incident.id is not None
    async with db.session() as session:
        (page,) = await planning.plan_pages(
            session, incident=incident, escalation=escalator.config.escalation, now=clock.now()
        )
        assert page.id is not None
        added = await recipient_rows.add_targets(
            session,
            page_id=page.id,
            new=[
                recipient_rows.NewTarget(TargetKind.USER, "U0LEAD"),
                recipient_rows.NewTarget(TargetKind.USER, "U0CTO"),
            ],
            now=clock.now(),
        )
        lead, cto = [row.id for row in added if row.id is not None]
        assert await leases.claim_target(session, target_id=lead, token="slow", now=clock.now())
        assert await leases.claim_target(session, target_id=cto, token="slow", now=clock.now())
        # Within the lease nobody else gets them; after it, a recipient still pending is free again.
        assert not await leases.claim_target(session, target_id=cto, token="fast", now=clock.now())
        sent = [writes.DmOutcome(lead, "slow", TargetState.SENT)]
        assert await writes.record_dms(session, outcomes=sent, now=clock.now()) == {(lead, "slow")}
        later = clock.now() + leases.DEFAULT_LEASE
        assert not await leases.claim_target(session, target_id=lead, token="fast", now=later)  # sent already
        assert await leases.claim_target(session, target_id=cto, token="fast", now=later)
        # The slow sender cannot record an outcome for a recipient it no longer holds.
        stale = [writes.DmOutcome(cto, "slow", TargetState.FAILED, "user_not_found")]
        assert not await writes.record_dms(session, outcomes=stale, now=later)


async def test_a_declaration_sends_only_its_own_due_pages(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    """Another incident's due page is the sweep's business (N declarations must not make N sweeps)."""
    escalator = make_escalator()
    other = await declare(db, clock, channel_id="C0OTHER")
    async with db.session() as session:
        await planning.plan_pages(session, incident=other, escalation=escalator.config.escalation, now=clock.now())
    incident = await declare(db, clock)
    assert incident.id is not None and other.id is not None
    assert (await escalator.incident_declared(incident.id)).pages == 1
    assert [inc for _, inc, _ in pager.dms] == [incident.id]
    assert (await page_rows(db, other.id))[0] == (1, 0, False, False)
    assert (await escalator.run_due()).pages == 1
    assert [inc for _, inc, _ in pager.dms] == [incident.id, other.id]


async def test_releasing_a_page_frees_the_recipients_its_sender_held(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    """After an unexpected error mid-page, the retry may DM whoever is still pending at once."""
    escalator = make_escalator(two_people())
    incident = await declare(db, clock)
    async with db.session() as session:
        (page,) = await planning.plan_pages(
            session, incident=incident, escalation=escalator.config.escalation, now=clock.now()
        )
        assert page.id is not None
        assert await leases.claim(session, model=Page, row_id=page.id, token="first", now=clock.now())
        (row,) = await recipient_rows.add_targets(
            session, page_id=page.id, new=[recipient_rows.NewTarget(TargetKind.USER, "U0CTO")], now=clock.now()
        )
        assert row.id is not None
        assert await leases.claim_target(session, target_id=row.id, token="first", now=clock.now())
        retry_at = clock.now() + timedelta(seconds=30)
        assert await leases.release(session, model=Page, row_id=page.id, token="first", retry_at=retry_at, error="boom")
        assert await leases.claim(session, model=Page, row_id=page.id, token="second", now=retry_at)
        assert await leases.claim_target(session, target_id=row.id, token="second", now=retry_at)


async def test_a_page_that_keeps_crashing_is_given_up_after_the_last_attempt(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """An unexpected error (a bug, not Slack) is retried like an outage, then the page is recorded as sent."""

    async def broken(*, incident: object, report: object) -> None:
        raise RuntimeError("renderer bug")

    pager.report_page = broken  # type: ignore[assignment,method-assign]
    escalator, incident_id = await start()
    oncall_user = on_call_at(escalator.config.oncall, clock.now())
    assert await page_rows(db, incident_id) == [(1, 0, False, False), (2, 0, False, False), (3, 0, False, False)]
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    clock.advance(escalator.retry_backoff * 2)
    await escalator.run_due()  # the third attempt fails too: give up and record what it did
    assert pager.paged() == [(1, oncall_user)]  # DMed once, though tried three times
    async with db.session() as session:
        row = (await queries.pages(session, incident_id=incident_id))[0]
        events = await timeline.events(session, incident_id=incident_id, kinds=["page"])
    assert row.sent_at is not None and row.attempts == 3 and row.sent_to == [oncall_user]
    assert row.error == "gave up after 3 attempts: RuntimeError: renderer bug"
    assert [e.data["level"] for e in events] == [1]
