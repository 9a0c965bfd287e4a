"""Pages and reminders in the database: plan, claim, finish, cancel, acknowledge, re-plan.

Exactly once, across restarts and replicas
------------------------------------------
A row is sent by whoever *claims* it: a conditional UPDATE that succeeds only while the row is
pending, due, and not held by a live claim. The claim is a lease (`claim_token`,
`claim_expires_at = now + lease`), not the final mark, because a process can die between claiming
and sending. Options considered:

* mark `sent_at` as the claim: a crash after the claim loses the page for ever (at-most-once);
* claim with a lease (chosen): a crash after the claim delays the page by at most the lease, then
  another replica or the restarted process sends it. Only a crash *after* the DMs went out and
  *before* `finish_page` committed repeats a page, and only once per crash.

Only the holder of the claim (same token) may finish or release the row, so a sender whose lease
ran out while Slack was slow cannot overwrite the replica that took over. The lease (2 minutes by
default) must be longer than a send can take; the Slack client's own timeouts keep sends well
below that. Leases are measured with each process's clock, so replicas' clocks must agree to
within the lease (NTP does far better).

Per recipient
-------------
A page's delivery is recorded per recipient in `escalation_page_targets` (one row per user DMed,
per bot.yml target that resolved to nobody, for the channel mention and for PagerDuty). When a DM
fails for a transient reason (Slack 5xx, unreachable, rate limited) the page row is released for
a retry at a back-off and the next attempt only DMs the recipients still pending; everyone already
reached is left alone. After the last attempt the page is recorded as sent with the rest under
`failed`. Each DM is fenced by a conditional UPDATE on its own row too, so two senders of one page
(a lease that ran out) never DM one person twice.

Every function commits its own unit of work: a claim must be visible to other replicas at once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import case, delete, func, or_, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc as _as_utc
from bot.config import Escalation, Reminders, Severity
from bot.escalation import policy
from bot.escalation.models import Page, PageTarget, Reminder, ReminderKind, TargetKind, TargetState, TimerRow
from bot.incidents.models import Incident
from bot.timeline import service as timeline
from bot.timeline.models import Kind

DEFAULT_LEASE = timedelta(minutes=2)
T = TypeVar("T", Page, Reminder)


def new_token() -> str:
    return uuid.uuid4().hex


def _pending(model: type[TimerRow]) -> list[Any]:
    return [col(model.sent_at).is_(None), col(model.cancelled_at).is_(None)]  # type: ignore[attr-defined]


def _held(model: type[TimerRow], row_id: int, token: str) -> list[Any]:
    """The row is still ours (our claim token) and not sent yet."""
    return [col(model.id) == row_id, col(model.claim_token) == token, col(model.sent_at).is_(None)]  # type: ignore[attr-defined]


def _claimable(model: type[TimerRow], now: datetime) -> list[Any]:
    expires = col(model.claim_expires_at)  # type: ignore[attr-defined]
    return [*_pending(model), col(model.due_at) <= now, or_(expires.is_(None), expires <= now)]  # type: ignore[attr-defined]


# --- reading ------------------------------------------------------------------------------


async def pages(session: AsyncSession, *, incident_id: int) -> list[Page]:
    query = select(Page).where(Page.incident_id == incident_id).order_by(col(Page.level), col(Page.repeat))
    return list((await session.exec(query)).all())


async def reminders(session: AsyncSession, *, incident_id: int, kind: str | None = None) -> list[Reminder]:
    query = select(Reminder).where(Reminder.incident_id == incident_id)
    if kind is not None:
        query = query.where(Reminder.kind == kind)
    return list((await session.exec(query.order_by(col(Reminder.kind), col(Reminder.seq)))).all())


async def due_reminders(
    session: AsyncSession, *, now: datetime, limit: int = 100, incident_id: int | None = None
) -> list[int]:
    """Reminders that are due and free to claim, oldest first (of one incident, or of all)."""
    query = select(Reminder.id).where(*_claimable(Reminder, now))
    if incident_id is not None:
        query = query.where(Reminder.incident_id == incident_id)
    query = query.order_by(col(Reminder.due_at)).limit(limit)
    return [row_id for row_id in (await session.exec(query)).all() if row_id is not None]


async def page_with_incident(session: AsyncSession, *, page_id: int) -> tuple[Page, Incident | None] | None:
    query = (
        select(Page, Incident)
        .outerjoin(Incident, col(Incident.id) == col(Page.incident_id))
        .where(col(Page.id) == page_id)
    )
    row = (await session.exec(query)).first()
    return None if row is None else (row[0], row[1])


async def due_pages(
    session: AsyncSession, *, now: datetime, limit: int = 100, incident_id: int | None = None
) -> list[tuple[int, int]]:
    """(page, incident) of pages due and free to claim (of one incident, or of all), oldest and lowest level first."""
    query = select(Page.id, Page.incident_id).where(*_claimable(Page, now))
    if incident_id is not None:
        query = query.where(Page.incident_id == incident_id)
    query = query.order_by(col(Page.due_at), col(Page.level), col(Page.repeat)).limit(limit)
    return [(page_id, incident) for page_id, incident in (await session.exec(query)).all() if page_id is not None]


def _free_at(model: type[TimerRow]) -> Any:
    """When a pending row can be claimed: when its claim expires, or (unclaimed) when it is due."""
    return func.coalesce(col(model.claim_expires_at), col(model.due_at))  # type: ignore[attr-defined]


async def next_due(session: AsyncSession) -> datetime | None:
    """When the scheduler should next wake: the earliest free due time or claim expiry."""
    candidates: list[datetime] = []
    for model in (Page, Reminder):
        value = (await session.exec(select(func.min(_free_at(model))).where(*_pending(model)))).one()  # type: ignore[call-overload]
        if value is not None:
            candidates.append(_as_utc(value))
    return min(candidates) if candidates else None


async def next_page_due(session: AsyncSession, *, after: datetime) -> datetime | None:
    """The earliest time after `after` at which a pending page becomes free to claim."""
    free_at = _free_at(Page)
    value = (await session.exec(select(func.min(free_at)).where(*_pending(Page), free_at > after))).one()  # type: ignore[call-overload]
    return None if value is None else _as_utc(value)


async def open_incidents_without_pages(
    session: AsyncSession, *, declared_after: datetime, declared_before: datetime
) -> list[Incident]:
    """Incidents whose planning was lost (a crash between declaring and paging)."""
    has_pages = select(Page.id).where(Page.incident_id == Incident.id).exists()
    query = select(Incident).where(
        Incident.status != "resolved",
        col(Incident.declared_at) >= declared_after,
        col(Incident.declared_at) <= declared_before,
        ~has_pages,
    )
    return list((await session.exec(query)).all())


async def postmortem_finished(session: AsyncSession, *, incident_id: int) -> bool:
    """A post-mortem is finished when a `postmortem` timeline event says `{"finished": true}`."""
    events = await timeline.events(session, incident_id=incident_id, kinds=[Kind.POSTMORTEM])
    # A later draft (`"finished": false`) does not reopen it: drafting again after finishing is not undoing.
    return any(event.data.get("finished") is True for event in events)


# --- claiming -----------------------------------------------------------------------------


async def claim(
    session: AsyncSession,
    *,
    model: type[T],
    row_id: int,
    token: str,
    now: datetime,
    lease: timedelta = DEFAULT_LEASE,
) -> T | None:
    """Take the row for sending; None when someone else has it, it was sent or cancelled, or is not due."""
    # RETURNING (SQLite 3.35+, PostgreSQL): the claimed row comes back without a second query.
    result = await session.exec(  # type: ignore[call-overload]
        update(model)
        .where(col(model.id) == row_id, *_claimable(model, now))
        .values(
            claim_token=token,
            claimed_at=now,
            claim_expires_at=now + lease,
            attempts=col(model.attempts) + 1,
        )
        .returning(model)
        .execution_options(populate_existing=True)
    )
    row = result.scalars().one_or_none()
    await session.commit()
    return row  # type: ignore[no-any-return]


@dataclass(frozen=True)
class PageClaim:
    """A page to claim; `recipients`, resolved before claiming, are recorded if this is its first claim."""

    page_id: int
    token: str
    recipients: list[NewTarget] | None = None


@dataclass(frozen=True)
class ClaimedPage:
    page: Page
    recipients: list[PageTarget] | None  # recorded with the claim (a first claim), else None: read them


async def claim_pages(
    session: AsyncSession, *, claims: list[PageClaim], now: datetime, lease: timedelta = DEFAULT_LEASE
) -> dict[int, ClaimedPage]:
    """Claim pages (each with its own token) in one transaction, and record first claims' recipients in it.

    Each transaction before a DM is a turn at SQLite's one writer, so one for the claim and the
    recipients of every page going out at once (`writes.PageWrites`). Pages not returned are held
    by someone else, sent, cancelled or not due; a page asked for twice goes to the last request.
    """
    by_id = {claim.page_id: claim for claim in claims}
    if not by_id:
        return {}
    pages = await _claim_many(session, {page_id: claim.token for page_id, claim in by_id.items()}, now, lease)
    recorded: dict[int, list[PageTarget]] = {}
    for page in pages:
        claim = by_id[page.id]  # type: ignore[index]
        if page.attempts == 1 and claim.recipients is not None:
            rows = _new_targets(claim.page_id, claim.recipients, now=now, token=claim.token, lease=lease)
            session.add_all(rows)
            recorded[claim.page_id] = rows
    try:
        await session.commit()
    except IntegrityError:
        # Recipients already on record for a page never claimed before (not by this code): theirs
        # stand. Claim without recording; each sender reads the rows after its claim, as a retry does.
        await session.rollback()
        pages = await _claim_many(session, {page_id: claim.token for page_id, claim in by_id.items()}, now, lease)
        await session.commit()
        recorded = {}
    return {page.id: ClaimedPage(page, recorded.get(page.id)) for page in pages if page.id is not None}


async def _claim_many(session: AsyncSession, tokens: dict[int, str], now: datetime, lease: timedelta) -> list[Page]:
    # PostgreSQL: rows another transaction has locked are skipped, not waited for. Two replicas
    # claiming overlapping batches would otherwise lock rows in whatever order their plans visit
    # them and could deadlock; a row skipped here is the other claimer's, or is looked at again by
    # the next wake-up. (SQLite has one writer at a time and no FOR UPDATE: nothing to skip.)
    free = select(Page.id).where(col(Page.id).in_(list(tokens)), *_claimable(Page, now))
    result = await session.exec(  # type: ignore[call-overload]
        update(Page)
        .where(col(Page.id).in_(free.with_for_update(skip_locked=True)), *_claimable(Page, now))
        .values(
            claim_token=case(tokens, value=col(Page.id)),
            claimed_at=now,
            claim_expires_at=now + lease,
            attempts=col(Page.attempts) + 1,
        )
        .returning(Page)
        .execution_options(populate_existing=True)
    )
    return list(result.scalars().all())


async def release(
    session: AsyncSession,
    *,
    model: type[Page] | type[Reminder],
    row_id: int,
    token: str,
    retry_at: datetime,
    error: str,
) -> bool:
    """Give a claimed row back for a retry at `retry_at` (the lease doubles as the back-off).

    False when the claim was lost or the row was cancelled meanwhile (nothing will retry it then).
    A page's recipients we still hold are freed too, so the retry may DM them.
    """
    if model is Page:
        await session.exec(  # type: ignore[call-overload]
            update(PageTarget)
            .where(
                col(PageTarget.page_id) == row_id,
                col(PageTarget.claim_token) == token,
                col(PageTarget.state) == TargetState.PENDING,
            )
            .values(claim_expires_at=None)
        )
    result = await session.exec(  # type: ignore[call-overload]
        update(model)
        .where(*_held(model, row_id, token), col(model.cancelled_at).is_(None))
        .values(claim_expires_at=retry_at, error=error[:2000])
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def cancel_claimed(
    session: AsyncSession, *, model: type[Page] | type[Reminder], row_id: int, token: str, now: datetime, reason: str
) -> bool:
    """The claimer found the row should not go out after all (incident resolved, acked, ...)."""
    result = await session.exec(  # type: ignore[call-overload]
        update(model).where(*_held(model, row_id, token)).values(cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def _mark_sent(
    session: AsyncSession,
    *,
    model: type[T],
    row_id: int,
    token: str,
    now: datetime,
    late_after: timedelta,
    started_at: datetime | None = None,
    **values: Any,
) -> tuple[T, bool, float] | None:
    """Mark the row sent if we still hold its claim; returns it with (late, seconds late), None if not ours.

    Lateness is measured at `started_at` (default `now`). Leaves the transaction open for the caller's
    timeline event and next row.
    """
    row = await session.get(model, row_id, populate_existing=True)
    if row is None or row.claim_token != token or row.sent_at is not None:
        return None
    delay = max((started_at or now) - _as_utc(row.due_at), timedelta(0)).total_seconds()
    late = delay > late_after.total_seconds()
    result = await session.exec(  # type: ignore[call-overload]
        update(model)
        .where(*_held(model, row_id, token))
        # Sent is the truth even if a resolve cancelled it while it was going out.
        .values(sent_at=now, late=late, late_seconds=delay, cancelled_at=None, cancel_reason=None, **values)
    )
    if result.rowcount != 1:
        await session.rollback()
        return None
    return row, late, delay


# --- pages --------------------------------------------------------------------------------


def _new_page(incident_id: int, planned: policy.PlannedPage, *, due_at: datetime, now: datetime) -> Page:
    return Page(
        incident_id=incident_id,
        level=planned.level,
        repeat=planned.repeat,
        name=planned.name,
        notify=list(planned.notify),
        due_at=due_at,
        created_at=now,
    )


async def plan_pages(session: AsyncSession, *, incident: Incident, escalation: Escalation, now: datetime) -> list[Page]:
    """Insert the levels the severity pages; planning again (or on another replica) adds nothing."""
    assert incident.id is not None
    existing = {(page.level, page.repeat) for page in await pages(session, incident_id=incident.id)}
    added = []
    for planned in policy.plan(escalation, severity=incident.severity, declared_at=_as_utc(incident.declared_at)):
        if (planned.level, planned.repeat) in existing:
            continue
        page = _new_page(incident.id, planned, due_at=planned.due_at, now=now)
        session.add(page)
        added.append(page)
    if not added:
        return []
    try:
        await session.commit()
    except IntegrityError:
        # Another replica planned the same incident between our read and our insert.
        await session.rollback()
        return []
    return added


# --- per-recipient delivery ------------------------------------------------------------------

DELIVERED_KINDS = (TargetKind.USER, TargetKind.PAGERDUTY)


def _reached_someone() -> Any:
    """The page DMed someone (or PagerDuty took it): its delivery has started for real."""
    return (
        select(PageTarget.id)
        .where(
            col(PageTarget.page_id) == Page.id,
            col(PageTarget.state) == TargetState.SENT,
            col(PageTarget.kind).in_([str(kind) for kind in DELIVERED_KINDS]),
        )
        .exists()
    )


async def targets(session: AsyncSession, *, page_id: int) -> list[PageTarget]:
    query = (
        select(PageTarget)
        .where(PageTarget.page_id == page_id)
        .order_by(col(PageTarget.id))
        .execution_options(populate_existing=True)
    )
    return list((await session.exec(query)).all())


async def targets_by_page(session: AsyncSession, *, incident_id: int) -> dict[int, list[PageTarget]]:
    """The recipients of every page of an incident (pages without any are left out), in one query."""
    query = (
        select(PageTarget)
        .join(Page, col(Page.id) == col(PageTarget.page_id))
        .where(Page.incident_id == incident_id)
        .order_by(col(PageTarget.id))
        .execution_options(populate_existing=True)
    )
    by_page: dict[int, list[PageTarget]] = {}
    for row in (await session.exec(query)).all():
        by_page.setdefault(row.page_id, []).append(row)
    return by_page


@dataclass(frozen=True)
class NewTarget:
    kind: TargetKind
    recipient: str
    state: TargetState = TargetState.PENDING
    error: str | None = None


async def add_targets(
    session: AsyncSession,
    *,
    page_id: int,
    new: list[NewTarget],
    now: datetime,
    existing: list[PageTarget] | None = None,
    token: str | None = None,
    lease: timedelta = DEFAULT_LEASE,
) -> list[PageTarget]:
    """Record recipients (in order) unless they are there already; returns every row of the page.

    With `token` (the page's claim), new pending people are inserted already claimed for their DM:
    whoever inserts a row is the only one who can have it.
    """
    rows = list(existing) if existing is not None else await targets(session, page_id=page_id)
    added = _new_targets(page_id, new, now=now, token=token, lease=lease, known=rows)
    if not added:
        return rows
    session.add_all(added)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # a sender whose lease ran out wrote them first; theirs stand
        return await targets(session, page_id=page_id)
    return sorted([*rows, *added], key=lambda row: row.id or 0)


def _new_targets(
    page_id: int,
    new: list[NewTarget],
    *,
    now: datetime,
    token: str | None,
    lease: timedelta,
    known: Sequence[PageTarget] = (),
) -> list[PageTarget]:
    """Rows for recipients not among `known` (nor twice in `new`); pending people claimed with `token`."""
    seen = {(row.kind, row.recipient) for row in known}
    added = []
    for item in new:
        key = (str(item.kind), item.recipient[:200])
        if key in seen:
            continue
        seen.add(key)
        claimed = token is not None and item.kind == TargetKind.USER and item.state == TargetState.PENDING
        added.append(
            PageTarget(
                page_id=page_id,
                kind=item.kind,
                recipient=item.recipient[:200],
                state=item.state,
                error=item.error[:500] if item.error else None,
                created_at=now,
                done_at=None if item.state == TargetState.PENDING else now,
                claim_token=token if claimed else None,
                claim_expires_at=now + lease if claimed else None,
                attempts=1 if claimed else 0,
            )
        )
    return added


async def claim_target(
    session: AsyncSession, *, target_id: int, token: str, now: datetime, lease: timedelta = DEFAULT_LEASE
) -> bool:
    """Take one pending recipient for its DM, just before sending it; False when someone else has it.

    The lease is as long as a page's: a sender that outlived its page lease (Slack hung) and the
    sender that took the page over cannot both DM the same person.
    """
    expires = col(PageTarget.claim_expires_at)
    result = await session.exec(  # type: ignore[call-overload]
        update(PageTarget)
        .where(
            col(PageTarget.id) == target_id,
            col(PageTarget.state) == TargetState.PENDING,
            or_(expires.is_(None), expires <= now),
        )
        .values(claim_token=token, claim_expires_at=now + lease, attempts=col(PageTarget.attempts) + 1)
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def mark_target(
    session: AsyncSession,
    *,
    target_id: int,
    state: TargetState,
    now: datetime,
    error: str | None = None,
) -> bool:
    """Record the outcome for a recipient still pending (a bot.yml target, the mention, PagerDuty);
    PENDING with an error frees it for the next attempt. A DM's outcome is `record_dms`'s, under its claim.
    """
    result = await session.exec(  # type: ignore[call-overload]
        update(PageTarget)
        .where(col(PageTarget.id) == target_id, col(PageTarget.state) == TargetState.PENDING)
        .values(
            state=state,
            error=error[:500] if error else None,
            done_at=None if state == TargetState.PENDING else now,
            claim_expires_at=None,
        )
    )
    await session.commit()
    return bool(result.rowcount == 1)


@dataclass(frozen=True)
class DmOutcome:
    """How one page DM went, recorded while its sender holds the recipient's claim (`token`)."""

    target_id: int
    token: str
    state: TargetState
    error: str | None = None


async def record_dms(session: AsyncSession, *, outcomes: list[DmOutcome], now: datetime) -> set[tuple[int, str]]:
    """Record DMs' outcomes in one transaction (one statement per kind of outcome); returns (row, token) recorded.

    A row is recorded only while it is pending under the outcome's token, as `mark_target` does.
    Two outcomes for one row (a sender whose claim was taken over, and the one who took it) go in
    separate statements, so the claim holder's is recorded whichever comes first.
    """
    groups: dict[tuple[TargetState, str | None, int], dict[int, str]] = {}
    for outcome in outcomes:
        error = outcome.error[:500] if outcome.error else None
        again = 0
        while outcome.target_id in groups.setdefault((outcome.state, error, again), {}):
            again += 1
        groups[(outcome.state, error, again)][outcome.target_id] = outcome.token
    recorded: set[tuple[int, str]] = set()
    for (state, error, _), tokens in groups.items():
        result = await session.exec(  # type: ignore[call-overload]
            update(PageTarget)
            .where(
                col(PageTarget.id).in_(list(tokens)),
                col(PageTarget.state) == TargetState.PENDING,
                col(PageTarget.claim_token) == case(tokens, value=col(PageTarget.id)),
            )
            .values(
                state=state,
                error=error,
                done_at=None if state == TargetState.PENDING else now,
                claim_expires_at=None,
            )
            .returning(col(PageTarget.id), col(PageTarget.claim_token))
        )
        recorded.update((row_id, token) for row_id, token in result.all())
    await session.commit()
    return recorded


async def mark_invited(session: AsyncSession, *, target_ids: list[int]) -> None:
    if target_ids:
        await session.exec(  # type: ignore[call-overload]
            update(PageTarget).where(col(PageTarget.id).in_(target_ids)).values(invited=True)
        )
        await session.commit()


@dataclass
class Delivery:
    """What happened when a page went out."""

    sent_to: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # user or target -> reason
    errors: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)  # other paging services that took it ("PagerDuty")


async def finish_page(
    session: AsyncSession,
    *,
    page_id: int,
    token: str,
    now: datetime,
    delivery: Delivery,
    escalation: Escalation,
    severity: Severity | str,
    late_after: timedelta,
    started_at: datetime | None = None,
) -> Page | None:
    """Mark the page sent (with the timeline event and the next repeat) if we still hold its claim.

    Lateness is measured at `started_at`, the first attempt: a page that took two retries because
    Slack failed is not "late" the way a page sent after the bot was down is. Recipients still
    pending are marked failed (the page gave up on them, or the incident stopped).
    """
    marked = await _mark_sent(
        session,
        model=Page,
        row_id=page_id,
        token=token,
        now=now,
        late_after=late_after,
        started_at=started_at,
        sent_to=list(delivery.sent_to),
        failed=dict(delivery.failed),
        error="; ".join(delivery.errors)[:2000] or None,
    )
    if marked is None:
        return None
    page, late, delay = marked
    await session.exec(  # type: ignore[call-overload]
        update(PageTarget)
        .where(col(PageTarget.page_id) == page_id, col(PageTarget.state) == TargetState.PENDING)
        .values(state=TargetState.FAILED, done_at=now, claim_expires_at=None)
    )
    text = f"Paged level {page.level} ({page.name})"
    if page.repeat:
        text += f", repeat {page.repeat}"
    if delivery.via:
        text += " via " + ", ".join(delivery.via)
    elif not delivery.sent_to:
        text = f"Page for level {page.level} ({page.name}) reached nobody"
    timeline.add(
        session,
        incident_id=page.incident_id,
        kind=Kind.PAGE,
        at=now,
        text=text,
        data={
            "action": "sent",
            "page_id": page.id,
            "level": page.level,
            "name": page.name,
            "repeat": page.repeat,
            "sent_to": list(delivery.sent_to),
            "failed": dict(delivery.failed),
            "late": late,
            "late_seconds": round(delay, 3),
            "errors": list(delivery.errors),
            "via": list(delivery.via),
        },
    )
    following = policy.next_repeat(
        escalation, severity=severity, level=page.level, repeat=page.repeat, due_at=_as_utc(page.due_at)
    )
    if following is not None:
        session.add(_new_page(page.incident_id, following, due_at=max(following.due_at, now), now=now))
    await session.commit()
    return await session.get(Page, page_id, populate_existing=True)


async def page_next_level_now(session: AsyncSession, *, incident_id: int, now: datetime) -> Page | None:
    """Make the incident's lowest pending page due now (if it was due later); None when none is left."""
    query = (
        select(Page)
        .where(col(Page.incident_id) == incident_id, *_pending(Page))
        .order_by(col(Page.level), col(Page.repeat))
        .limit(1)
    )
    page = (await session.exec(query)).first()
    if page is not None and page.due_at > now:
        await session.exec(  # type: ignore[call-overload]
            update(Page).where(col(Page.id) == page.id, col(Page.sent_at).is_(None)).values(due_at=now)
        )
        await session.commit()
    return page


async def cancel_pages(
    session: AsyncSession,
    *,
    incident_id: int,
    now: datetime,
    reason: str,
    page_ids: list[int] | None = None,
    actor: str | None = None,
    while_severity: str | None = None,
) -> list[Page]:
    """Cancel pending pages (all, or the given ones) with a timeline event; returns what was cancelled.

    A page that already reached someone and waits to retry the rest is not cancelled: its sender
    records it as sent (to those it reached) at its next attempt, when it sees the incident stopped.
    `while_severity`: only if the incident still has this severity (a re-plan made for it).
    """
    query = select(Page).where(Page.incident_id == incident_id, *_pending(Page), ~_reached_someone())
    if page_ids is not None:
        query = query.where(col(Page.id).in_(page_ids))
    candidates = list((await session.exec(query)).all())
    if not candidates:
        return []
    ids = [page.id for page in candidates]
    conditions = [col(Page.id).in_(ids), *_pending(Page), ~_reached_someone()]
    if while_severity is not None:
        # Checked in the UPDATE itself: a re-plan that read the severity before a newer change
        # committed (and whose handler already ran) must not cancel what the newer one pages.
        severity_now = select(Incident.id).where(
            col(Incident.id) == incident_id, col(Incident.severity) == while_severity
        )
        conditions.append(severity_now.exists())
    await session.exec(  # type: ignore[call-overload]
        update(Page).where(*conditions).values(cancelled_at=now, cancel_reason=reason[:200])
    )
    cancelled = [
        page
        for page in (
            await session.exec(select(Page).where(col(Page.id).in_(ids)).execution_options(populate_existing=True))
        ).all()
        if page.cancelled_at is not None and page.sent_at is None
    ]
    if cancelled:
        timeline.add(
            session,
            incident_id=incident_id,
            kind=Kind.PAGE,
            at=now,
            actor=actor,
            text=f"Escalation stopped: {reason}",
            data={"action": "cancelled", "levels": sorted({p.level for p in cancelled}), "reason": reason},
        )
    await session.commit()
    return cancelled


@dataclass
class AckResult:
    acknowledged: list[Page]
    cancelled: list[Page]


async def acknowledge(
    session: AsyncSession,
    *,
    incident_id: int,
    user: str,
    now: datetime,
    stop: policy.StopOn,
) -> AckResult:
    """Record who acknowledged the pages sent so far; with `stop_on: ack`, cancel what is still pending."""
    query = select(Page).where(
        Page.incident_id == incident_id, col(Page.sent_at).is_not(None), col(Page.acknowledged_at).is_(None)
    )
    acked = list((await session.exec(query)).all())
    for page in acked:
        page.acknowledged_at = now
        page.acknowledged_by = user
        session.add(page)
    await session.commit()
    cancelled: list[Page] = []
    if stop == "ack":
        cancelled = await cancel_pages(
            session, incident_id=incident_id, now=now, reason=f"acknowledged by <@{user}>", actor=user
        )
    return AckResult(acknowledged=acked, cancelled=cancelled)


@dataclass
class ReplanResult:
    added: list[int] = field(default_factory=list)  # levels
    restored: list[int] = field(default_factory=list)
    cancelled: list[int] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.added or self.restored or self.cancelled)


async def replan(session: AsyncSession, *, incident: Incident, escalation: Escalation, now: datetime) -> ReplanResult:
    """Fit the pending pages to the incident's (new) severity.

    Levels the severity no longer pages are cancelled; levels it now pages are added (due at
    `declared_at + after`, or now if that has passed) or restored if an earlier plan cancelled
    them before they were sent. Sent pages are history and stay as they are.
    """
    assert incident.id is not None
    result = ReplanResult()
    if not incident.is_open:
        return result
    severity = incident.severity
    stop = policy.stop_on(escalation, severity)
    rows = await pages(session, incident_id=incident.id)
    if stop == "ack" and incident.acknowledged_at is not None:
        cancelled = await cancel_pages(
            session, incident_id=incident.id, now=now, reason=f"already acknowledged; {severity} stops on ack"
        )
        result.cancelled = sorted({page.level for page in cancelled})
        return result
    planned = policy.plan(escalation, severity=severity, declared_at=_as_utc(incident.declared_at))
    wanted = {p.level: p for p in planned}
    last = max(wanted)
    by_key = {(row.level, row.repeat): row for row in rows}

    obsolete = [
        row.id
        for row in rows
        if row.is_pending and row.id is not None and (row.level not in wanted or (row.repeat and row.level != last))
    ]
    for level, spec in wanted.items():
        row = by_key.get((level, 0))
        due = max(spec.due_at, now)
        if row is None:
            session.add(_new_page(incident.id, spec, due_at=due, now=now))
            result.added.append(level)
        elif row.sent_at is None and row.cancelled_at is not None:
            row.cancelled_at, row.cancel_reason = None, None
            claim_ends = row.claim_expires_at
            if claim_ends is None or _as_utc(claim_ends) <= now:
                # A fresh page: resolve its targets again when it goes out, with a full set of attempts.
                # (A cancelled page never reached anybody: see cancel_pages.)
                row.due_at = due
                row.claim_token, row.claim_expires_at, row.claimed_at = None, None, None
                row.attempts, row.error = 0, None
                await session.exec(delete(PageTarget).where(col(PageTarget.page_id) == row.id))  # type: ignore[call-overload]
            # Else its DMs were going out when it was cancelled (severity down and up again within
            # seconds): its sender keeps the claim and records what it sent, so nobody is paged twice.
            # A cancelled page is never claimed anew, so the claim read here is still the live one.
            session.add(row)
            result.restored.append(level)
    # Keep the repeat chain going if the new last level was already sent and nothing follows it.
    if escalation.repeat_last_every is not None:
        chain = [row for row in rows if row.level == last]
        sent = [row for row in chain if row.sent_at is not None]
        if sent and not any(row.is_pending for row in chain):
            latest = max(sent, key=lambda row: row.repeat)
            following = policy.next_repeat(
                escalation,
                severity=severity,
                level=last,
                repeat=max(row.repeat for row in chain),
                due_at=_as_utc(latest.due_at),
            )
            if following is not None:
                session.add(_new_page(incident.id, following, due_at=max(following.due_at, now), now=now))
                result.added.append(last)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # a concurrent re-plan did it; its result stands
        return ReplanResult()
    if obsolete:
        cancelled = await cancel_pages(
            session,
            incident_id=incident.id,
            now=now,
            reason=f"{severity} pages {policy.level_count(escalation, severity)} level(s)",
            page_ids=[row_id for row_id in obsolete if row_id is not None],
            while_severity=str(severity),
        )
        result.cancelled = sorted({page.level for page in cancelled})
    if result.added or result.restored:
        timeline.add(
            session,
            incident_id=incident.id,
            kind=Kind.PAGE,
            at=now,
            text=f"Escalation re-planned for {severity}",
            data={"action": "replanned", "added": result.added, "restored": result.restored},
        )
        await session.commit()
    return result


# --- reminders ----------------------------------------------------------------------------


async def _next_seq(session: AsyncSession, *, incident_id: int, kind: str) -> int:
    query = select(func.max(Reminder.seq)).where(Reminder.incident_id == incident_id, Reminder.kind == kind)
    current = (await session.exec(query)).one()  # type: ignore[call-overload]
    return 0 if current is None else int(current) + 1


async def _insert_reminder(session: AsyncSession, reminder: Reminder) -> Reminder | None:
    session.add(reminder)
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()  # another replica inserted the same (incident, kind, seq)
        return None
    return reminder


def status_update_due(incident: Incident, config: Reminders) -> datetime:
    """When the channel should be reminded if nobody posts a status update."""
    basis = incident.last_status_update_at or incident.declared_at
    return _as_utc(basis) + config.status_update_every


def wants_status_reminders(incident: Incident, config: Reminders) -> bool:
    return incident.is_open and Severity(incident.severity) in config.status_update_severities


async def plan_status_reminder(
    session: AsyncSession, *, incident: Incident, config: Reminders, now: datetime
) -> Reminder | None:
    """Make sure an open P1/P2 incident has one pending status reminder; cancel it for other severities."""
    assert incident.id is not None
    kind = ReminderKind.STATUS_UPDATE
    if not wants_status_reminders(incident, config):
        await cancel_reminders(
            session,
            incident_id=incident.id,
            kind=kind,
            now=now,
            reason=f"no status reminders for {incident.severity}",
        )
        return None
    pending = [r for r in await reminders(session, incident_id=incident.id, kind=kind) if r.is_pending]
    if pending:
        return pending[0]
    seq = await _next_seq(session, incident_id=incident.id, kind=kind)
    due = max(status_update_due(incident, config), now)
    return await _insert_reminder(
        session, Reminder(incident_id=incident.id, kind=kind, seq=seq, due_at=due, created_at=now)
    )


async def plan_postmortem_reminder(
    session: AsyncSession, *, incident: Incident, config: Reminders, now: datetime
) -> Reminder | None:
    """After resolution, one chase for an unfinished post-mortem."""
    assert incident.id is not None
    kind = ReminderKind.POSTMORTEM
    existing = await reminders(session, incident_id=incident.id, kind=kind)
    if any(r.is_pending for r in existing):
        return next(r for r in existing if r.is_pending)
    resolved = _as_utc(incident.resolved_at) if incident.resolved_at else now
    seq = (max(r.seq for r in existing) + 1) if existing else 0
    return await _insert_reminder(
        session,
        Reminder(
            incident_id=incident.id,
            kind=kind,
            seq=seq,
            due_at=resolved + config.postmortem_due_after,
            created_at=now,
        ),
    )


async def defer_reminder(session: AsyncSession, *, reminder_id: int, token: str, due_at: datetime) -> bool:
    """A status update came in since this reminder was planned: move it instead of sending."""
    result = await session.exec(  # type: ignore[call-overload]
        update(Reminder)
        .where(*_held(Reminder, reminder_id, token))
        .values(due_at=due_at, claim_token=None, claimed_at=None, claim_expires_at=None)
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def finish_reminder(
    session: AsyncSession,
    *,
    reminder_id: int,
    token: str,
    now: datetime,
    sent_to: list[str],
    error: str | None,
    late_after: timedelta,
    next_due: datetime | None,
) -> Reminder | None:
    """Mark sent with a timeline event and, for repeating reminders, plan the next one."""
    marked = await _mark_sent(
        session,
        model=Reminder,
        row_id=reminder_id,
        token=token,
        now=now,
        late_after=late_after,
        sent_to=list(sent_to),
        error=(error or None) and error[:2000],
    )
    if marked is None:
        return None
    reminder, late, delay = marked
    what = "status update" if reminder.kind == ReminderKind.STATUS_UPDATE else "post-mortem"
    timeline.add(
        session,
        incident_id=reminder.incident_id,
        kind=Kind.REMINDER,
        at=now,
        text=f"Reminded the channel about the {what}",
        data={
            "reminder_id": reminder.id,
            "kind": reminder.kind,
            "seq": reminder.seq,
            "sent_to": list(sent_to),
            "late": late,
            "late_seconds": round(delay, 3),
        },
    )
    if next_due is not None:
        session.add(
            Reminder(
                incident_id=reminder.incident_id,
                kind=reminder.kind,
                seq=reminder.seq + 1,
                due_at=next_due,
                created_at=now,
            )
        )
    await session.commit()
    return await session.get(Reminder, reminder_id, populate_existing=True)


async def cancel_reminders(
    session: AsyncSession, *, incident_id: int, now: datetime, reason: str, kind: str | None = None
) -> int:
    conditions = [col(Reminder.incident_id) == incident_id, *_pending(Reminder)]
    if kind is not None:
        conditions.append(col(Reminder.kind) == kind)
    result = await session.exec(  # type: ignore[call-overload]
        update(Reminder).where(*conditions).values(cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()
    return int(result.rowcount or 0)
