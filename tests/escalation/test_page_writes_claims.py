"""Pages going out at once write their claims and DM outcomes together (`bot.escalation.pages.writes`):
the transaction.

What must hold: each claim is still conditional on its own page (its own token, only if free and
due), a first claim records its recipients in the same transaction, and a DM outcome is recorded only
under its sender's claim. The batching is in test_page_writes_batching.py.
"""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation import leases
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages import planning
from bot.escalation.pages import writes as page_writes
from bot.incidents.models import Incident
from tests.escalation.conftest import MakeEscalator, config
from tests.escalation.page_writes_support import LATER_LEVELS, lead, planned_pages, targets


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
