"""Claims: how a page, a reminder or one recipient's DM is sent once, across restarts and replicas.

A row is sent by whoever *claims* it: a conditional UPDATE that succeeds only while the row is
pending, due, and not held by a live claim. The claim is a lease (`claim_token`,
`claim_expires_at = now + lease`), not the final mark, because a process can die between claiming
and sending. Options considered:

* mark `sent_at` as the claim: a crash after the claim loses the page for ever (at-most-once);
* claim with a lease (chosen): a crash after the claim delays the page by at most the lease, then
  another replica or the restarted process sends it. A crash *after* a DM went out and *before*
  it was recorded leaves that person pending with no outcome; so does an answer that never came
  back (a cut, a timeout, a gateway's 5xx page). The next sender looks for the page in their DM
  first (`retries.posted_before`; a reminder in its channel, both found by their message metadata)
  and records it instead of repeating it. It looks only then:
  after an answer of Slack's own (`ratelimited`, `service_unavailable`, any ok:false), the DM was
  not posted (`exceptions.unanswered`). The last attempt allowed looks too before giving a person up,
  after an answer lost or an error of our own (`pages.dms.PageDms.found_after_all`), so a DM that
  arrived is recorded as sent, not as failed.

A person can still get one page DM twice, at most once per unknown outcome, when (none of these can be
closed by looking more, which is why they stay):
  - the look-up cannot read the DM (no `im:history` scope, Slack failing or throttling
    conversations.history): not knowing, the DM goes out again, because a page that might never
    arrive is worse than a second one;
  - the look-up runs before Slack shows the first DM: a request Slack took after the bot stopped
    waiting for it (its timeout), or a sender paused past its lease before its request reached Slack,
    whose DM lands after the next sender looked (the fence below does not stop a request already sent;
    nothing the bot can read says a request is still on its way to Slack);
  - Slack answered an error other than `fatal_error` yet posted: not looked for, because Slack documents
    those answers as nothing done, and looking after each would add a conversations.history read
    (Tier 3: some 50 a minute) to every retry in exactly the outage or throttling that
    causes them, a storm of pages would then throttle the look-ups, and a failed look-up DMs again anyway;
  - the DM is not in what the look-up reads: from the first attempt on (less `CLOCK_SKEW` in
    `bot/slack/api.py`, 10 minutes, for clocks that differ), five pages of history (a thousand
    messages): the read is bounded so a retry never pages through a whole DM's history.

Only the holder of the claim (same token) may finish or release the row, so a sender whose lease
ran out while Slack was slow cannot overwrite the replica that took over. The lease (2 minutes by
default) must be longer than a send can take; the Slack client's own timeouts keep sends well
below that. Leases are measured with each process's clock, so replicas' clocks must agree to
within the lease (NTP does far better).

Each DM is fenced by a conditional UPDATE on its recipient's row too (`claim_target`), so two
senders of one page (a lease that ran out) never both start a DM to one person within one lease;
what a sender already sent is the look-up's to find.

Every function commits its own unit of work: a claim must be visible to other replicas at once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import case, func, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.escalation.models import Page, PageTarget, Reminder, TargetState, TimerRow

DEFAULT_LEASE = timedelta(minutes=2)
# Pages and reminders, and other domains' timers that share their columns (an archived channel's notice).
T = TypeVar("T", bound=TimerRow)


def new_token() -> str:
    return uuid.uuid4().hex


# --- conditions ---------------------------------------------------------------------------


def pending(model: type[TimerRow]) -> list[Any]:
    """Neither sent nor cancelled."""
    return [col(model.sent_at).is_(None), col(model.cancelled_at).is_(None)]


def held(model: type[TimerRow], row_id: int, token: str) -> list[Any]:
    """The row is still ours (our claim token) and not sent yet."""
    return [col(model.id) == row_id, col(model.claim_token) == token, col(model.sent_at).is_(None)]  # type: ignore[attr-defined]


def claimable(model: type[TimerRow], now: datetime) -> list[Any]:
    """Pending, due, and not held by a live claim."""
    expires = col(model.claim_expires_at)
    return [*pending(model), col(model.due_at) <= now, or_(expires.is_(None), expires <= now)]


def free_at(model: type[TimerRow]) -> Any:
    """When a pending row can be claimed: when its claim expires, or (unclaimed) when it is due."""
    return func.coalesce(col(model.claim_expires_at), col(model.due_at))


async def next_due(session: AsyncSession) -> datetime | None:
    """When the scheduler should next wake: the earliest free due time or claim expiry."""
    candidates: list[datetime] = []
    for model in (Page, Reminder):
        value = (await session.exec(select(func.min(free_at(model))).where(*pending(model)))).one()
        if value is not None:
            candidates.append(utc(value))
    return min(candidates) if candidates else None


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
    result = await session.exec(
        update(model)
        .where(col(model.id) == row_id, *claimable(model, now))  # type: ignore[attr-defined]
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
    return row


async def claim_pages(session: AsyncSession, tokens: dict[int, str], now: datetime, lease: timedelta) -> list[Page]:
    """Claim the free ones of these pages (page -> its token) in one `UPDATE … RETURNING`; no commit."""
    # PostgreSQL: rows another transaction has locked are skipped, not waited for. Two replicas
    # claiming overlapping batches would otherwise lock rows in whatever order their plans visit
    # them and could deadlock; a row skipped here is the other claimer's, or is looked at again by
    # the next wake-up. (SQLite has one writer at a time and no FOR UPDATE: nothing to skip.)
    free = select(Page.id).where(col(Page.id).in_(list(tokens)), *claimable(Page, now))
    result = await session.exec(
        update(Page)
        .where(col(Page.id).in_(free.with_for_update(skip_locked=True)), *claimable(Page, now))
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


async def claim_target(
    session: AsyncSession,
    *,
    target_id: int,
    token: str,
    now: datetime,
    attempts: int,
    lease: timedelta = DEFAULT_LEASE,
) -> bool:
    """Take one pending recipient for its DM, just before sending it; False when someone else has it.

    The lease is as long as a page's: a sender that outlived its page lease (Slack hung) and the
    sender that took the page over cannot both DM the same person.

    Only while the row is as the caller read it (`attempts` claims so far): the `error` read with it is
    then the outcome of the last claim, which tells whether its DM may have gone out (`unanswered`).
    The claim clears it, so a sender that dies before recording its own outcome leaves NULL: unknown.
    """
    expires = col(PageTarget.claim_expires_at)
    result = await session.exec(
        update(PageTarget)
        .where(
            col(PageTarget.id) == target_id,
            col(PageTarget.state) == TargetState.PENDING,
            col(PageTarget.attempts) == attempts,
            or_(expires.is_(None), expires <= now),
        )
        .values(claim_token=token, claim_expires_at=now + lease, attempts=attempts + 1, error=None)
    )
    await session.commit()
    return bool(result.rowcount == 1)


# --- giving back, or finishing, what we hold ------------------------------------------------------


async def release(
    session: AsyncSession,
    *,
    model: type[TimerRow],
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
        await session.exec(
            update(PageTarget)
            .where(
                col(PageTarget.page_id) == row_id,
                col(PageTarget.claim_token) == token,
                col(PageTarget.state) == TargetState.PENDING,
            )
            .values(claim_expires_at=None)
        )
    result = await session.exec(
        update(model)
        .where(*held(model, row_id, token), col(model.cancelled_at).is_(None))
        .values(claim_expires_at=retry_at, error=error[:2000])
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def forget_error(session: AsyncSession, *, model: type[Page] | type[Reminder], row_id: int, token: str) -> None:
    """Clear the last attempt's error before this one goes out: a sender that dies during it leaves NULL,
    an unknown outcome, not the earlier attempt's answer."""
    await session.exec(update(model).where(*held(model, row_id, token)).values(error=None))
    await session.commit()


async def cancel_claimed(
    session: AsyncSession, *, model: type[Page] | type[Reminder], row_id: int, token: str, now: datetime, reason: str
) -> bool:
    """The claimer found the row should not go out after all (incident resolved, acked, ...)."""
    result = await session.exec(
        update(model).where(*held(model, row_id, token)).values(cancelled_at=now, cancel_reason=reason[:200])
    )
    await session.commit()
    return bool(result.rowcount == 1)


async def mark_sent(
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
    delay = max((started_at or now) - utc(row.due_at), timedelta(0)).total_seconds()
    late = delay > late_after.total_seconds()
    result = await session.exec(
        update(model)
        .where(*held(model, row_id, token))
        # Sent is the truth even if a resolve cancelled it while it was going out.
        .values(sent_at=now, late=late, late_seconds=delay, cancelled_at=None, cancel_reason=None, **values)
    )
    if result.rowcount != 1:
        await session.rollback()
        return None
    return row, late, delay
