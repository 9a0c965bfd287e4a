"""Pages through the Escalator, on a real database: transient DM failures are retried for the people not
reached, exactly once each, and two senders of one page never DM a person twice."""

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
from bot.timeline import service as timeline
from tests.escalation.conftest import (
    FakePager,
    MakeEscalator,
    Start,
    config,
    declare,
    page_rows,
    resolve,
)


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
        assert await leases.claim_target(session, target_id=lead, token="slow", now=clock.now(), attempts=0)
        assert await leases.claim_target(session, target_id=cto, token="slow", now=clock.now(), attempts=0)
        # Within the lease nobody else gets them; after it, a recipient still pending is free again.
        assert not await leases.claim_target(session, target_id=cto, token="fast", now=clock.now(), attempts=1)
        sent = [writes.DmOutcome(lead, "slow", TargetState.SENT)]
        assert await writes.record_dms(session, outcomes=sent, now=clock.now()) == {(lead, "slow")}
        later = clock.now() + leases.DEFAULT_LEASE
        # Sent already.
        assert not await leases.claim_target(session, target_id=lead, token="fast", now=later, attempts=1)
        assert await leases.claim_target(session, target_id=cto, token="fast", now=later, attempts=1)
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
        assert await leases.claim_target(session, target_id=row.id, token="first", now=clock.now(), attempts=0)
        retry_at = clock.now() + timedelta(seconds=30)
        assert await leases.release(session, model=Page, row_id=page.id, token="first", retry_at=retry_at, error="boom")
        assert await leases.claim(session, model=Page, row_id=page.id, token="second", now=retry_at)
        assert await leases.claim_target(session, target_id=row.id, token="second", now=retry_at, attempts=1)


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
