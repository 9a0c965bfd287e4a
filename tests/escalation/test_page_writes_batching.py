"""Pages going out at once write their claims and DM outcomes together (`bot.escalation.pages.writes`):
the batching. Requests made while a write is under way share one transaction, a failed write fails
only its own requests, and a page another writer holds is skipped, not waited for.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.models import Page, TargetKind, TargetState
from bot.escalation.pages import writes as page_writes
from bot.escalation.pages.writes import PageWrites
from tests.escalation.conftest import MakeEscalator, Statements, config
from tests.escalation.page_writes_support import LATER_LEVELS, due_first_levels, lead, planned_pages, targets
from tests.fault.support import DatabaseOutage, unreachable_url


async def test_claims_and_outcomes_asked_for_at_once_share_one_transaction(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, statements: Statements
) -> None:
    pages = await due_first_levels(db, clock, make_escalator, 8)
    writes = PageWrites(db=db, clock=clock)
    statements.clear()
    commits = statements.commits

    claimed = await asyncio.gather(
        *(writes.claim(page_writes.PageClaim(p.id, f"token-{p.id}", lead(p))) for p in pages)  # type: ignore[arg-type]
    )
    assert [c.page.id for c in claimed if c is not None] == [p.id for p in pages]
    assert statements.count("UPDATE escalation_pages") == 1
    assert statements.commits - commits == 1
    assert writes.transactions == 1

    users = [c.recipients[0] for c in claimed if c is not None and c.recipients]
    outcomes = [page_writes.DmOutcome(u.id, f"token-{u.page_id}", TargetState.SENT) for u in users]  # type: ignore[arg-type]
    recorded = await asyncio.gather(*(writes.record(o) for o in outcomes))
    assert recorded == [True] * len(pages)
    assert statements.count("UPDATE escalation_page_targets") == 1
    assert statements.commits - commits == 2


async def test_one_page_asked_for_twice_in_one_write_is_claimed_once(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    """A signal handler and a sweep may both send the same page at the same moment."""
    [page] = await due_first_levels(db, clock, make_escalator, 1)
    assert page.id is not None
    writes = PageWrites(db=db, clock=clock)
    results = await asyncio.gather(
        writes.claim(page_writes.PageClaim(page.id, "sweep", lead(page))),
        writes.claim(page_writes.PageClaim(page.id, "signal", lead(page))),
    )
    assert writes.transactions == 1
    won = [r for r in results if r is not None]
    assert len(won) == 1
    assert won[0].recipients is not None
    assert {r.claim_token for r in await targets(db, page.id) if r.kind == TargetKind.USER} == {won[0].page.claim_token}


async def test_a_request_made_while_a_write_is_under_way_joins_the_next(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, statements: Statements
) -> None:
    pages = await due_first_levels(db, clock, make_escalator, 5)
    writes = PageWrites(db=db, clock=clock)
    statements.clear()
    first = asyncio.ensure_future(writes.claim(page_writes.PageClaim(pages[0].id, "first", [])))  # type: ignore[arg-type]
    await statements.seen("UPDATE escalation_pages")  # the first write is under way
    rest = [asyncio.ensure_future(writes.claim(page_writes.PageClaim(p.id, f"t{p.id}", []))) for p in pages[1:]]  # type: ignore[arg-type]

    assert (await first) is not None
    assert all(c is not None for c in await asyncio.gather(*rest))
    assert statements.count("UPDATE escalation_pages") == 2
    assert writes.transactions == 2


async def test_a_failed_write_fails_each_of_its_requests_and_the_next_write_works(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, database_url: str, tmp_path: Path
) -> None:
    pages = await due_first_levels(db, clock, make_escalator, 3)
    writes = PageWrites(db=db, clock=clock)
    outage = DatabaseOutage(SimpleNamespace(db=db), unreachable_url(database_url, str(tmp_path)))  # type: ignore[arg-type]
    try:
        with outage.window():
            results = await asyncio.gather(
                *(writes.claim(page_writes.PageClaim(p.id, "t", [])) for p in pages),  # type: ignore[arg-type]
                return_exceptions=True,
            )
    finally:
        await outage.close()
    assert len(results) == 3 and all(isinstance(r, Exception) for r in results)

    again = await writes.claim(page_writes.PageClaim(pages[0].id, "t2", []))  # type: ignore[arg-type]
    assert again is not None and again.page.claim_token == "t2"


async def test_a_claim_made_is_answered_though_the_outcomes_written_with_it_fail(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    """Else the page would be held by a claim its sender was told it did not get, until the lease ran out."""
    first, second = await due_first_levels(db, clock, make_escalator, 2)
    writes = PageWrites(db=db, clock=clock)
    claimed = await writes.claim(page_writes.PageClaim(first.id, "first", lead(first)))  # type: ignore[arg-type]
    assert claimed is not None and claimed.recipients is not None
    person = claimed.recipients[0]
    unwritable = page_writes.DmOutcome(person.id, "first", TargetState.SENT, error=404)  # type: ignore[arg-type]

    results = await asyncio.gather(
        writes.claim(page_writes.PageClaim(second.id, "second", lead(second))),  # type: ignore[arg-type]
        writes.record(unwritable),
        return_exceptions=True,
    )

    assert writes.transactions == 2
    got, failed = results
    assert isinstance(got, page_writes.ClaimedPage) and got.page.claim_token == "second"
    assert isinstance(failed, Exception)
    assert [r.state for r in await targets(db, person.page_id)] == ["pending", "failed"]  # nothing half-written


async def test_a_storm_of_pages_claims_in_a_few_transactions_and_pages_everyone_once(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: Any, statements: Statements
) -> None:
    """Through the escalator: 20 pages due at once each DM once, with far fewer claim writes than pages."""
    await planned_pages(db, clock, make_escalator, 20)
    escalator = make_escalator(config(escalation=LATER_LEVELS))
    clock.advance(timedelta(minutes=5))
    statements.clear()

    report = await escalator.run_due()

    assert report.pages == 20
    assert sorted(pager.paged()) == [(1, "U0LEAD")] * 20
    claims = statements.count("UPDATE escalation_pages SET claim_token")
    assert 1 <= claims < 20, f"{claims} claim statements for 20 pages"
    assert escalator.writes.transactions < 40  # one claim and one outcome each, written one by one


async def test_a_page_locked_by_another_writer_is_skipped_not_waited_for(
    db: Database, other_db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    """PostgreSQL: two replicas claiming overlapping batches must not wait on (or deadlock over) each other's rows."""
    if db.is_sqlite:
        pytest.skip("SQLite has one writer at a time: there is no row lock to skip")
    pages = await due_first_levels(db, clock, make_escalator, 2)
    locked, free = pages
    async with other_db.session() as other:  # another replica is in the middle of writing `locked`
        await other.exec(select(Page).where(col(Page.id) == locked.id).with_for_update())
        claims = [page_writes.PageClaim(p.id, f"token-{p.id}", []) for p in pages]  # type: ignore[arg-type]
        async with db.session() as session:
            claimed = await asyncio.wait_for(page_writes.claim_pages(session, claims=claims, now=clock.now()), 5)
        assert set(claimed) == {free.id}
        await other.rollback()
    async with db.session() as session:  # once the lock is gone, the page is claimable as ever
        claimed = await page_writes.claim_pages(session, claims=claims, now=clock.now())
    assert set(claimed) == {locked.id}


async def test_a_first_attempt_checks_its_incident_as_the_claim_read_it_and_once_more_before_its_dm(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, pager: Any
) -> None:
    """The claim's transaction reads the claimed pages' incidents; one read of the incident, and no
    write, comes between it and the DM.

    Every transaction on a page's way to its DM is a wait for the event loop in a storm, behind
    the declarations' work (benchmarks/page_lateness.py). The one read is the stop condition checked
    again just before the DM: an ack may have committed since the claim (`test_ack_after_claim.py`).
    """
    await planned_pages(db, clock, make_escalator, 1)
    escalator = make_escalator(config(escalation=LATER_LEVELS))
    clock.advance(timedelta(minutes=5))
    log: list[str] = []
    engines = [db.engine.sync_engine, db.for_pager().engine.sync_engine]
    hooks: list[tuple[str, Any]] = [
        ("before_cursor_execute", lambda _c, _cur, sql, *_a: log.append(" ".join(sql.split()))),
        ("begin", lambda _c: log.append("BEGIN")),
    ]
    dm_page = pager.dm_page

    async def logged_dm(**kwargs: Any) -> None:
        log.append("DM")
        await dm_page(**kwargs)

    pager.dm_page = logged_dm
    for engine in engines:
        for name, hook in hooks:
            event.listen(engine, name, hook)
    try:
        report = await escalator.run_due()
    finally:
        for engine in engines:
            for name, hook in hooks:
                event.remove(engine, name, hook)

    assert report.pages == 1 and pager.paged() == [(1, "U0LEAD")]
    claim = next(i for i, s in enumerate(log) if s.startswith("UPDATE escalation_pages SET claim_token"))
    before_dm = log[claim : log.index("DM")]
    assert before_dm.count("BEGIN") == 1, before_dm
    in_claim, after_claim = before_dm[: before_dm.index("BEGIN")], before_dm[before_dm.index("BEGIN") + 1 :]
    assert any(s.startswith("SELECT incidents") for s in in_claim), (
        before_dm
    )  # read after the claim, in its transaction
    assert len(after_claim) == 1 and after_claim[0].startswith("SELECT incidents"), before_dm  # read again, only
