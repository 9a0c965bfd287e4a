"""A page's record: marked sent under its claim, with who was reached and who was not, the timeline
event, and the next repeat of the last level.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import update
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc
from bot.config import Escalation, Severity
from bot.escalation import policy
from bot.escalation.leases import held, mark_sent
from bot.escalation.models import Page, PageTarget, TargetState
from bot.escalation.pages.planning import new_page
from bot.timeline import events
from bot.timeline import service as timeline


@dataclass
class Delivery:
    """What happened when a page went out."""

    sent_to: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # user or target -> reason
    errors: list[str] = field(default_factory=list)
    via: list[str] = field(default_factory=list)  # other paging services that took it ("PagerDuty")
    noted: dict[str, int] = field(default_factory=dict)  # of sent_to, told it escalated -> the level paged at


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
    repeat: bool = True,
) -> Page | None:
    """Mark the page sent (with the timeline event and, with `repeat`, the next repeat) if we still hold its claim.

    Lateness is measured at `started_at`, the first attempt: a page that took two retries because
    Slack failed is not "late" the way a page sent after the bot was down is. Recipients still
    pending are marked failed (the page gave up on them, or the incident stopped).
    """
    marked = await mark_sent(
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
    await session.exec(
        update(PageTarget)
        .where(col(PageTarget.page_id) == page_id, col(PageTarget.state) == TargetState.PENDING)
        .values(state=TargetState.FAILED, done_at=now, claim_expires_at=None)
    )
    await timeline.add(
        session,
        incident_id=page.incident_id,
        at=now,
        text=_sent_text(page, delivery),
        payload=_sent_event(page, delivery, late=late, delay=delay),
    )
    following = policy.next_repeat(
        escalation, severity=severity, level=page.level, repeat=page.repeat, due_at=utc(page.due_at), sent_at=now
    )
    if repeat and following is not None:
        session.add(new_page(page.incident_id, following, due_at=max(following.due_at, now), now=now))
    await session.commit()
    return await session.get(Page, page_id, populate_existing=True)


async def cancel_stopped(session: AsyncSession, *, page: Page, token: str, now: datetime, reason: str) -> bool:
    """Cancel a page we hold that found its incident stopped before it reached anybody, on the timeline
    as `planning.cancel_pages` does (which skips a page cancelled here). False when it was cancelled
    already (that cancel wrote the event) or is not ours."""
    assert page.id is not None
    result = await session.exec(
        update(Page)
        .where(*held(Page, page.id, token), col(Page.cancelled_at).is_(None))
        .values(cancelled_at=now, cancel_reason=reason[:200])
    )
    cancelled = bool(result.rowcount == 1)
    if cancelled:
        await timeline.add(
            session,
            incident_id=page.incident_id,
            at=now,
            text=f"Escalation stopped: {reason}",
            payload=events.PageEvent(action="cancelled", levels=[page.level], reason=reason),
        )
    await session.commit()
    return cancelled


def _sent_text(page: Page, delivery: Delivery) -> str:
    text = f"Paged level {page.level} ({page.name})"
    if page.repeat:
        text += f", repeat {page.repeat}"
    if delivery.via:
        text += " via " + ", ".join(delivery.via)
    elif delivery.sent_to and set(delivery.sent_to) <= set(delivery.noted):  # nobody paged anew
        earlier = ", ".join(str(level) for level in sorted(set(delivery.noted.values())))
        text = f"Level {page.level} ({page.name}): already paged at level {earlier}, told it escalated"
    elif not delivery.sent_to:
        text = f"Page for level {page.level} ({page.name}) reached nobody"
    return text


def _sent_event(page: Page, delivery: Delivery, *, late: bool, delay: float) -> events.PageEvent:
    return events.PageEvent(
        action="sent",
        page_id=page.id,
        level=page.level,
        name=page.name,
        repeat=page.repeat,
        sent_to=list(delivery.sent_to),
        failed=dict(delivery.failed),
        late=late,
        late_seconds=round(delay, 3),
        errors=list(delivery.errors),
        via=list(delivery.via),
        noted=dict(delivery.noted) or None,
    )
