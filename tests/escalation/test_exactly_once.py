"""Exactly once: concurrent claimers on one database, restarts with pending and overdue pages, crashes."""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation import leases
from bot.escalation.flows import Escalator
from bot.escalation.models import Page
from bot.escalation.pages import planning, queries, records
from bot.escalation.scheduler import EscalationScheduler
from bot.incidents.models import Incident
from tests.escalation.conftest import FakePager, MakeEscalator, Start, config, declare


async def plan_only(db: Database, clock: FakeClock, escalator: Escalator, count: int) -> list[int]:
    """Incidents with planned pages and nothing sent yet (as if declared while nobody was running)."""
    ids = []
    for n in range(count):
        incident = await declare(db, clock, channel_id=f"C0INC{n}")
        assert incident.id is not None
        async with db.session() as session:
            await planning.plan_pages(
                session, incident=incident, escalation=escalator.config.escalation, now=clock.now()
            )
        ids.append(incident.id)
    return ids


async def test_two_processes_racing_send_every_page_exactly_once(
    db: Database, other_db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    async def yield_control(_user: str) -> None:
        await asyncio.sleep(0.001)  # let the other process interleave mid-send

    pager_a, pager_b = FakePager(on_dm=yield_control), FakePager(on_dm=yield_control)
    a = make_escalator(pager=pager_a)
    b = make_escalator(pager=pager_b, db=other_db)
    incident_ids = await plan_only(db, clock, a, count=8)
    clock.advance(timedelta(minutes=31))  # every level of every incident is due

    reports = await asyncio.gather(a.run_due(), b.run_due(), a.run_due(), b.run_due())

    sent = Counter((incident, page.level) for _, incident, page in pager_a.dms + pager_b.dms)
    assert sent == Counter({(incident, level): 1 for incident in incident_ids for level in (1, 2, 3)})
    assert sum(r.pages for r in reports) == 24
    async with db.session() as session:
        for incident_id in incident_ids:
            rows = await queries.pages(session, incident_id=incident_id)
            assert all(row.sent_at is not None and row.attempts == 1 for row in rows)


async def test_concurrent_claims_on_one_row_have_one_winner(
    db: Database, other_db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    (incident_id,) = await plan_only(db, clock, escalator, count=1)
    async with db.session() as session:
        page_id = (await queries.pages(session, incident_id=incident_id))[0].id
    assert page_id is not None

    async def try_claim(database: Database, token: str) -> bool:
        async with database.session() as session:
            return await leases.claim(session, model=Page, row_id=page_id, token=token, now=clock.now()) is not None

    results = await asyncio.gather(*(try_claim(db if n % 2 else other_db, f"token-{n}") for n in range(10)))
    assert results.count(True) == 1


async def test_restart_sends_overdue_pages_once_marked_late(
    other_db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator, start: Start
) -> None:
    declared = clock.now()
    _, incident_id = await start()  # level 1 goes out, then the process "dies"
    assert pager.levels() == [1]

    clock.advance(timedelta(minutes=40))
    restarted_pager = FakePager()
    restarted = make_escalator(pager=restarted_pager, db=other_db)
    scheduler = EscalationScheduler(restarted)
    report = await scheduler.start()
    try:
        assert report.pages == 2
        assert restarted_pager.levels() == [2, 3]  # in order, level 1 not repeated
        assert [r.page.late_by for _, r in restarted_pager.reports] == [timedelta(minutes=25), timedelta(minutes=10)]
        async with other_db.session() as session:
            rows = await queries.pages(session, incident_id=incident_id)
        assert [(row.level, row.late, row.late_seconds) for row in rows] == [
            (1, False, 0.0),
            (2, True, 25 * 60.0),
            (3, True, 10 * 60.0),
        ]
        assert rows[2].sent_at == declared + timedelta(minutes=40)
        # The overdue P1 status reminder went out too, once.
        assert len(restarted_pager.reminders) == 1
    finally:
        await scheduler.stop()

    # Another restart finds nothing left to send.
    again = FakePager()
    third = EscalationScheduler(make_escalator(pager=again))
    assert (await third.start()).pages == 0
    await third.stop()
    assert again.dms == [] and again.reminders == []


async def test_restart_reschedules_pending_pages_for_their_due_time(
    other_db: Database, clock: FakeClock, make_escalator: MakeEscalator, start: Start
) -> None:
    declared = clock.now()
    first, incident_id = await start()
    clock.advance(timedelta(minutes=5))

    restarted_pager = FakePager()
    scheduler = EscalationScheduler(make_escalator(pager=restarted_pager, db=other_db))
    try:
        assert (await scheduler.start()).pages == 0
        assert scheduler.next_wake == declared + timedelta(minutes=15)
        clock.advance(timedelta(minutes=10))
        await scheduler.run()  # what the wake-up job runs
        assert restarted_pager.levels() == [2]
        assert scheduler.next_wake == declared + timedelta(minutes=30)
    finally:
        await scheduler.stop()


async def test_a_claim_left_by_a_crashed_process_is_sent_after_the_lease(
    db: Database, other_db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(db=other_db)
    (incident_id,) = await plan_only(db, clock, escalator, count=1)
    async with db.session() as session:
        page = (await queries.pages(session, incident_id=incident_id))[0]
        assert page.id is not None
        # The crashed process claimed level 1 and never finished.
        assert await leases.claim(session, model=Page, row_id=page.id, token="crashed", now=clock.now())

    assert (await escalator.run_due()).pages == 0
    assert await escalator.next_due() == clock.now() + leases.DEFAULT_LEASE
    clock.advance(leases.DEFAULT_LEASE)
    assert (await escalator.run_due()).pages == 1
    assert pager.levels() == [1]
    async with db.session() as session:
        page = (await queries.pages(session, incident_id=incident_id))[0]
    assert page.attempts == 2 and page.late and page.late_seconds == leases.DEFAULT_LEASE.total_seconds()


async def test_a_sender_whose_lease_was_taken_over_cannot_mark_the_page(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    (incident_id,) = await plan_only(db, clock, escalator, count=1)
    async with db.session() as session:
        page_id = (await queries.pages(session, incident_id=incident_id))[0].id
        assert page_id is not None
        assert await leases.claim(session, model=Page, row_id=page_id, token="slow", now=clock.now())
        clock.advance(leases.DEFAULT_LEASE + timedelta(seconds=1))
        assert await leases.claim(session, model=Page, row_id=page_id, token="fast", now=clock.now())
        finish = dict(
            page_id=page_id,
            now=clock.now(),
            delivery=records.Delivery(sent_to=["U0ALICE"]),
            escalation=escalator.config.escalation,
            severity="P1",
            late_after=timedelta(seconds=60),
        )
        assert await records.finish_page(session, token="slow", **finish) is None  # type: ignore[arg-type]
        assert await records.finish_page(session, token="fast", **finish) is not None  # type: ignore[arg-type]
        assert await records.finish_page(session, token="fast", **finish) is None  # type: ignore[arg-type]


async def test_two_processes_planning_the_same_incident_insert_one_plan(
    db: Database, other_db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator()
    incident = await declare(db, clock)

    async def plan(database: Database) -> int:
        async with database.session() as session:
            loaded = await session.get(Incident, incident.id)
            assert loaded is not None
            added = await planning.plan_pages(
                session, incident=loaded, escalation=escalator.config.escalation, now=clock.now()
            )
            return len(added)

    results = await asyncio.gather(plan(db), plan(other_db), plan(db))
    assert sum(results) == 3
    async with db.session() as session:
        assert incident.id is not None
        assert len(await queries.pages(session, incident_id=incident.id)) == 3


async def test_recover_plans_an_incident_lost_between_declaring_and_planning(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    incident = await declare(db, clock)  # stored, but the process died before IncidentDeclared
    clock.advance(timedelta(minutes=20))
    scheduler = EscalationScheduler(make_escalator(config()))
    try:
        report = await scheduler.start()
    finally:
        await scheduler.stop()
    assert report.pages == 2  # levels 1 and 2, both late
    assert pager.levels(incident.id) == [1, 2]
    assert all(r.page.late_by is not None for _, r in pager.reports)


async def test_recover_leaves_incidents_older_than_a_day_alone(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    await declare(db, clock)
    clock.advance(timedelta(days=2))
    assert await make_escalator().recover() == 0
    assert pager.dms == []
