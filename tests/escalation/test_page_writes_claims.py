"""Pages going out at once write their claims and DM outcomes together (`bot.escalation.pages.writes`).

What must hold: each claim is still conditional on its own page (its own token, only if free and
due), a first claim records its recipients in the same transaction, a DM outcome is recorded only
under its sender's claim, and requests made while a write is under way share one transaction.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import event
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation import leases
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages import planning
from bot.escalation.pages import targets as recipient_rows
from bot.escalation.pages import writes as page_writes
from bot.escalation.pages.writes import PageWrites
from bot.incidents.models import Incident
from tests.escalation.conftest import MakeEscalator, config, declare
from tests.fault.support import DatabaseOutage, unreachable_url

LATER_LEVELS = {
    "levels": [
        {"name": "Lead", "after": "5m", "notify": ["U0LEAD"]},
        {"name": "CTO", "after": "10m", "notify": ["U0CTO"]},
    ]
}


class Statements:
    """Counts the statements the engine runs and the transactions it commits."""

    def __init__(self, db: Database) -> None:
        self.sql: list[str] = []
        self.commits = 0
        self._waiting: dict[str, asyncio.Event] = {}
        self._engine = db.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._execute)
        event.listen(self._engine, "commit", self._commit)

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sql.append(" ".join(statement.split()))
        for prefix, seen in self._waiting.items():
            if self.sql[-1].startswith(prefix):
                seen.set()

    async def seen(self, prefix: str) -> None:
        """Until a statement starting with `prefix` is sent (SQLAlchemy runs listeners on the loop's thread)."""
        if not self.count(prefix):
            await self._waiting.setdefault(prefix, asyncio.Event()).wait()

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def count(self, prefix: str) -> int:
        return sum(1 for statement in self.sql if statement.startswith(prefix))

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._execute)
        event.remove(self._engine, "commit", self._commit)


@pytest.fixture
def statements(db: Database) -> Iterator[Statements]:
    counter = Statements(db)
    yield counter
    counter.close()


async def planned_pages(db: Database, clock: FakeClock, make_escalator: MakeEscalator, incidents: int) -> list[Page]:
    """`incidents` incidents with levels due in 5 and 10 minutes, planned and not due yet."""
    escalator = make_escalator(config(escalation=LATER_LEVELS))
    for n in range(incidents):
        incident = await declare(db, clock, channel_id=f"C0INC{n}")
        assert incident.id is not None
        await escalator.incident_declared(incident.id)
    async with db.session() as session:
        return list((await session.exec(select(Page).order_by(col(Page.id)))).all())


async def due_first_levels(db: Database, clock: FakeClock, make_escalator: MakeEscalator, incidents: int) -> list[Page]:
    """Level 1 of `incidents` incidents, due now (level 2 is not)."""
    pages = [p for p in await planned_pages(db, clock, make_escalator, incidents) if p.level == 1]
    clock.advance(timedelta(minutes=5))
    return pages


def lead(page: Page) -> list[recipient_rows.NewTarget]:
    return [
        recipient_rows.NewTarget(TargetKind.USER, "U0LEAD"),
        recipient_rows.NewTarget(TargetKind.TARGET, "S0GONE", TargetState.FAILED, "gone"),
    ]


async def targets(db: Database, page_id: int) -> list[PageTarget]:
    async with db.session() as session:
        return await recipient_rows.targets(session, page_id=page_id)


# --- the transaction ------------------------------------------------------------------------


async def test_first_claims_record_their_recipients_each_under_its_own_token(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    pages = await planned_pages(db, clock, make_escalator, 2)
    level1 = [p for p in pages if p.level == 1]
    level2 = [p for p in pages if p.level == 2]
    clock.advance(timedelta(minutes=5))
    claims = [page_writes.PageClaim(p.id, f"token-{p.id}", lead(p)) for p in [*level1, *level2]]  # type: ignore[arg-type]
    async with db.session() as session:
        claimed = await page_writes.claim_pages(session, claims=claims, now=clock.now())

    assert set(claimed) == {p.id for p in level1}  # level 2 is not due
    for page in level1:
        assert page.id is not None
        got = claimed[page.id]
        assert (got.page.claim_token, got.page.attempts) == (f"token-{page.id}", 1)
        assert got.recipients is not None
        stored = await targets(db, page.id)
        assert [(r.id, r.kind, r.recipient, r.state) for r in stored] == [
            (r.id, r.kind, r.recipient, r.state) for r in got.recipients
        ]
        user, unresolved = stored
        # The person is held for the DM under the page's token; the failed target is done.
        token = f"token-{page.id}"
        assert (user.recipient, user.state, user.claim_token, user.attempts) == ("U0LEAD", "pending", token, 1)
        assert (unresolved.recipient, unresolved.state, unresolved.error) == ("S0GONE", "failed", "gone")
    for page in level2:
        assert page.id is not None
        assert await targets(db, page.id) == []


async def test_a_claimed_page_is_not_claimed_again_and_a_retry_records_nobody(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    pages = await planned_pages(db, clock, make_escalator, 1)
    page_id = pages[0].id
    assert page_id is not None
    clock.advance(timedelta(minutes=5))
    async with db.session() as session:
        first = await page_writes.claim_pages(
            session, claims=[page_writes.PageClaim(page_id, "a", [])], now=clock.now()
        )
        second = [page_writes.PageClaim(page_id, "b", lead(pages[0]))]
        again = await page_writes.claim_pages(session, claims=second, now=clock.now())
    assert first[page_id].recipients == []
    assert again == {}, "held by a live claim"

    clock.advance(leases.DEFAULT_LEASE + timedelta(seconds=1))  # the first sender died: its lease ran out
    async with db.session() as session:
        retry = await page_writes.claim_pages(
            session, claims=[page_writes.PageClaim(page_id, "c", lead(pages[0]))], now=clock.now()
        )
    assert retry[page_id].page.attempts == 2
    assert retry[page_id].recipients is None, "a retry reads the recipients on record"
    assert await targets(db, page_id) == []


async def test_recipients_already_on_record_stand_and_the_claims_still_go_through(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    pages = await planned_pages(db, clock, make_escalator, 2)
    level1 = [p for p in pages if p.level == 1]
    stray_page = level1[0].id
    assert stray_page is not None
    async with db.session() as session:  # not written by the claim path: someone's hand, or an old bug
        session.add(PageTarget(page_id=stray_page, kind=TargetKind.USER, recipient="U0LEAD", created_at=clock.now()))
        await session.commit()
    clock.advance(timedelta(minutes=5))
    claims = [page_writes.PageClaim(p.id, f"token-{p.id}", lead(p)) for p in level1]  # type: ignore[arg-type]
    async with db.session() as session:
        claimed = await page_writes.claim_pages(session, claims=claims, now=clock.now())

    assert set(claimed) == {p.id for p in level1}
    assert all(c.recipients is None and c.page.attempts == 1 for c in claimed.values())
    stray = await targets(db, stray_page)
    assert [(r.recipient, r.claim_token) for r in stray] == [("U0LEAD", None)]


async def test_a_dm_outcome_is_recorded_only_under_its_senders_claim(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    pages = await planned_pages(db, clock, make_escalator, 2)
    level1 = [p for p in pages if p.level == 1]
    clock.advance(timedelta(minutes=5))
    claims = [page_writes.PageClaim(p.id, f"token-{p.id}", lead(p)) for p in level1]  # type: ignore[arg-type]
    async with db.session() as session:
        claimed = await page_writes.claim_pages(session, claims=claims, now=clock.now())
    one, two = (claimed[p.id].recipients[0] for p in level1)  # type: ignore[index]
    assert one.id is not None and two.id is not None

    outcomes = [
        page_writes.DmOutcome(one.id, f"token-{level1[0].id}", TargetState.SENT),
        page_writes.DmOutcome(two.id, "someone-else", TargetState.FAILED, "user_not_found"),
    ]
    async with db.session() as session:
        recorded = await page_writes.record_dms(session, outcomes=outcomes, now=clock.now())
    assert recorded == {(one.id, f"token-{level1[0].id}")}
    [stored_one, _], [stored_two, _] = await targets(db, level1[0].id), await targets(db, level1[1].id)  # type: ignore[arg-type]
    assert (stored_one.state, stored_one.done_at, stored_one.claim_expires_at) == ("sent", clock.now(), None)
    assert (stored_two.state, stored_two.error) == ("pending", None)

    async with db.session() as session:  # recorded once: the row is no longer pending
        late = [page_writes.DmOutcome(one.id, f"token-{level1[0].id}", TargetState.FAILED, "x")]
        again = await page_writes.record_dms(session, outcomes=late, now=clock.now())
    assert again == set()


async def test_two_outcomes_for_one_recipient_in_one_write_record_the_claim_holders(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    """A sender whose claim was taken over and the sender who took it, their outcomes in one batch."""
    pages = await planned_pages(db, clock, make_escalator, 1)
    (level1,) = [p for p in pages if p.level == 1]
    clock.advance(timedelta(minutes=5))
    assert level1.id is not None
    claim = page_writes.PageClaim(level1.id, "new-holder", lead(level1))
    async with db.session() as session:
        claimed = await page_writes.claim_pages(session, claims=[claim], now=clock.now())
    recipients = claimed[level1.id].recipients
    assert recipients is not None
    target, _ = recipients
    assert target.id is not None and target.recipient == "U0LEAD"
    outcomes = [
        page_writes.DmOutcome(target.id, "new-holder", TargetState.SENT),
        page_writes.DmOutcome(target.id, "old-holder", TargetState.SENT),  # same statement group, stale token
    ]
    async with db.session() as session:
        recorded = await page_writes.record_dms(session, outcomes=outcomes, now=clock.now())
    assert recorded == {(target.id, "new-holder")}
    stored, *_ = await targets(db, level1.id)  # type: ignore[arg-type]
    assert stored.state == "sent"


async def test_a_page_cancelled_and_restored_while_its_dms_are_out_stays_with_its_sender(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator
) -> None:
    """Severity down and back up within seconds while the page is going out: restoring it used to
    drop its claim and recipients, so its sender's outcome was refused and the page went out again."""
    pages = await planned_pages(db, clock, make_escalator, 1)
    (level1,) = [p for p in pages if p.level == 1]
    assert level1.id is not None
    clock.advance(timedelta(minutes=5))
    claim = page_writes.PageClaim(level1.id, "sender", lead(level1))
    async with db.session() as session:
        claimed = await page_writes.claim_pages(session, claims=[claim], now=clock.now())
    recipients = claimed[level1.id].recipients
    assert recipients is not None
    target, _ = recipients
    assert target.id is not None
    async with db.session() as session:  # the downgrade
        cancelled = await planning.cancel_pages(
            session, incident_id=level1.incident_id, now=clock.now(), reason="P4", page_ids=[level1.id]
        )
    assert [p.id for p in cancelled] == [level1.id]
    async with db.session() as session:  # and back up
        incident = await session.get(Incident, level1.incident_id)
        assert incident is not None
        result = await planning.replan(
            session, incident=incident, escalation=config(escalation=LATER_LEVELS).escalation, now=clock.now()
        )
    assert result.restored == [1]
    async with db.session() as session:
        outcome = page_writes.DmOutcome(target.id, "sender", TargetState.SENT)
        assert await page_writes.record_dms(session, outcomes=[outcome], now=clock.now()) == {(target.id, "sender")}
    async with db.session() as session:
        page = await session.get(Page, level1.id, populate_existing=True)
    assert page is not None and page.cancelled_at is None and page.claim_token == "sender"


# --- the batching -----------------------------------------------------------------------------


async def test_claims_and_outcomes_asked_for_at_once_share_one_transaction(
    db: Database, clock: FakeClock, make_escalator: MakeEscalator, statements: Statements
) -> None:
    pages = await due_first_levels(db, clock, make_escalator, 8)
    writes = PageWrites(db=db, clock=clock)
    statements.sql.clear()
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
    statements.sql.clear()
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
    statements.sql.clear()

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
