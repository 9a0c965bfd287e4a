"""Planning pages: the rows an incident's escalation needs, fitted to its severity as it changes.

Which levels a severity pages, when, and what stops them are the escalation rules (`policy`); this
module turns them into rows: plan at declaration, re-plan on a severity change, cancel on ack or
resolve, page the next level now. Planning twice (or on two replicas) inserts once: a unique
(incident, level, repeat) index, and the loser of a race keeps the winner's rows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import Escalation, Severity
from bot.escalation import policy
from bot.escalation.leases import pending
from bot.escalation.models import Page, PageTarget
from bot.escalation.pages.queries import pages, severities_since
from bot.escalation.pages.targets import reached_someone
from bot.incidents.models import Incident
from bot.timeline import events
from bot.timeline import service as timeline


def new_page(incident_id: int, planned: policy.PlannedPage, *, due_at: datetime, now: datetime) -> Page:
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
    for planned in policy.plan(escalation, severity=incident.severity, declared_at=utc(incident.declared_at)):
        if (planned.level, planned.repeat) in existing:
            continue
        page = new_page(incident.id, planned, due_at=planned.due_at, now=now)
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


async def record_planned_severity(session: AsyncSession, *, incident_id: int, severity: Severity) -> None:
    """Note the severity the pages now fit, after the re-plan committed: the sweep re-plans while they differ."""
    await session.exec(update(Incident).where(col(Incident.id) == incident_id).values(planned_severity=severity))
    await session.commit()


async def page_next_level_now(session: AsyncSession, *, incident_id: int, now: datetime) -> Page | None:
    """Make the incident's lowest pending page not tried yet due now (if it was due later); None when none is left.

    A page tried already (waiting for its retry after Slack failed, or going out now) is no next level: its
    claim holds it until the retry, so making it due would page nobody, and the next level would wait.
    """
    query = (
        select(Page)
        .where(col(Page.incident_id) == incident_id, *pending(Page), col(Page.attempts) == 0)
        .order_by(col(Page.level), col(Page.repeat))
        .limit(1)
    )
    page = (await session.exec(query)).first()
    if page is not None and page.due_at > now:
        await session.exec(update(Page).where(col(Page.id) == page.id, col(Page.sent_at).is_(None)).values(due_at=now))
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
    query = select(Page).where(Page.incident_id == incident_id, *pending(Page), ~reached_someone())
    if page_ids is not None:
        query = query.where(col(Page.id).in_(page_ids))
    candidates = list((await session.exec(query)).all())
    if not candidates:
        return []
    ids = [page.id for page in candidates]
    conditions = [col(Page.id).in_(ids), *pending(Page), ~reached_someone()]
    if while_severity is not None:
        # Checked in the UPDATE itself: a re-plan that read the severity before a newer change
        # committed (and whose handler already ran) must not cancel what the newer one pages.
        severity_now = select(Incident.id).where(
            col(Incident.id) == incident_id, col(Incident.severity) == while_severity
        )
        conditions.append(severity_now.exists())
    await session.exec(update(Page).where(*conditions).values(cancelled_at=now, cancel_reason=reason[:200]))
    cancelled = [
        page
        for page in (
            await session.exec(select(Page).where(col(Page.id).in_(ids)).execution_options(populate_existing=True))
        ).all()
        if page.cancelled_at is not None and page.sent_at is None
    ]
    if cancelled:
        await timeline.add(
            session,
            incident_id=incident_id,
            at=now,
            actor=actor,
            text=f"Escalation stopped: {reason}",
            payload=events.PageEvent(action="cancelled", levels=sorted({p.level for p in cancelled}), reason=reason),
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
    them before they were sent. Sent pages are history and stay as they are. An acknowledged incident
    that any severity since its ack stops on ack (at least as urgent as this one) stays stopped.
    """
    assert incident.id is not None
    result = ReplanResult()
    if not incident.is_open:
        return result
    severity = incident.severity
    stopped_under = await _stopped_by_ack(session, incident=incident, escalation=escalation)
    if stopped_under is not None:
        # An ack under a stop-on-ack severity stops what was not sent by then, for good at that
        # severity and below (`policy.stopped_by_ack`): nothing is restored, added or repeated.
        reason = f"already acknowledged; {stopped_under} stops on ack"
        if stopped_under != severity:
            reason = f"acknowledged while {stopped_under}, which stops on ack; {severity} is less urgent"
        cancelled = await cancel_pages(session, incident_id=incident.id, now=now, reason=reason)
        result.cancelled = sorted({page.level for page in cancelled})
        return result
    rows = await pages(session, incident_id=incident.id)
    planned = policy.plan(escalation, severity=severity, declared_at=utc(incident.declared_at))
    wanted = {p.level: p for p in planned}
    last = max(wanted)
    obsolete = _obsolete(rows, wanted, last)
    await _fit_levels(session, incident_id=incident.id, rows=rows, wanted=wanted, now=now, result=result)
    _continue_repeats(session, incident=incident, escalation=escalation, rows=rows, last=last, now=now, result=result)
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
            page_ids=obsolete,
            while_severity=str(severity),
        )
        result.cancelled = sorted({page.level for page in cancelled})
    if result.added or result.restored:
        await timeline.add(
            session,
            incident_id=incident.id,
            at=now,
            text=f"Escalation re-planned for {severity}",
            payload=events.PageEvent(action="replanned", added=result.added, restored=result.restored),
        )
        await session.commit()
    return result


async def _stopped_by_ack(session: AsyncSession, *, incident: Incident, escalation: Escalation) -> Severity | None:
    """The severity whose `stop_on: ack` keeps this acknowledged incident's escalation stopped, or None."""
    if incident.acknowledged_at is None:
        return None
    since_ack = await severities_since(session, incident=incident, since=utc(incident.acknowledged_at))
    return policy.stopped_by_ack(escalation, severity=incident.severity, since_ack=since_ack)


def _obsolete(rows: list[Page], wanted: dict[int, policy.PlannedPage], last: int) -> list[int]:
    """Pending pages the severity no longer pages: levels beyond its count, repeats of a level no longer last."""
    return [
        row.id
        for row in rows
        if row.is_pending and row.id is not None and (row.level not in wanted or (row.repeat and row.level != last))
    ]


async def _fit_levels(
    session: AsyncSession,
    *,
    incident_id: int,
    rows: list[Page],
    wanted: dict[int, policy.PlannedPage],
    now: datetime,
    result: ReplanResult,
) -> None:
    """Add the levels the severity now pages; restore those an earlier plan cancelled before they went out."""
    by_key = {(row.level, row.repeat): row for row in rows}
    for level, spec in wanted.items():
        row = by_key.get((level, 0))
        due = max(spec.due_at, now)
        if row is None:
            session.add(new_page(incident_id, spec, due_at=due, now=now))
            result.added.append(level)
        elif row.sent_at is None and row.cancelled_at is not None:
            await _restore(session, row, due=due, now=now)
            result.restored.append(level)


async def _restore(session: AsyncSession, row: Page, *, due: datetime, now: datetime) -> None:
    row.cancelled_at, row.cancel_reason = None, None
    claim_ends = row.claim_expires_at
    if claim_ends is None or utc(claim_ends) <= now:
        # A fresh page: resolve its targets again when it goes out, with a full set of attempts.
        # (A cancelled page never reached anybody: see cancel_pages.)
        row.due_at = due
        row.claim_token, row.claim_expires_at, row.claimed_at = None, None, None
        row.attempts, row.error = 0, None
        await session.exec(delete(PageTarget).where(col(PageTarget.page_id) == row.id))
    # Else its DMs were going out when it was cancelled (severity down and up again within
    # seconds): its sender keeps the claim and records what it sent, so nobody is paged twice.
    # A cancelled page is never claimed anew, so the claim read here is still the live one.
    session.add(row)


def _continue_repeats(
    session: AsyncSession,
    *,
    incident: Incident,
    escalation: Escalation,
    rows: list[Page],
    last: int,
    now: datetime,
    result: ReplanResult,
) -> None:
    """Keep the repeat chain going if the new last level was already sent and nothing follows it.

    The next repeat keeps the chain's rhythm, but never falls due at the change itself: a level paged
    long ago (a P1 lowered to a P3 half an hour in) repeats `repeat_last_every` after the change, so
    changing the severity pages nobody by itself.
    """
    assert incident.id is not None
    if escalation.repeat_last_every is None:
        return
    chain = [row for row in rows if row.level == last]
    sent = [row for row in chain if row.sent_at is not None]
    if not sent or any(row.is_pending for row in chain):
        return
    latest = max(sent, key=lambda row: row.repeat)
    following = policy.next_repeat(
        escalation,
        severity=incident.severity,
        level=last,
        repeat=max(row.repeat for row in chain),
        due_at=utc(latest.due_at),
        sent_at=now,
    )
    if following is not None:
        session.add(new_page(incident.id, following, due_at=max(following.due_at, now), now=now))
        result.added.append(last)
