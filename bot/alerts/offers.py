"""The offer to resolve an incident once all its alert groups cleared: posted by exactly one sync.

Each group's sync reads the incident's groups; when none fires, it *claims* the offer before posting it:
a conditional UPDATE on the incident's `alert_resolve_offers` row that succeeds only while no offer
covered this all-clear yet (`offered_through` below the sum of the groups' `clears`), no other
group's live claim holds the row, and none of the incident's groups fires (again) by then. Two
groups clearing at the same instant read the same sum, so only one sync posts; the other's clear is
covered by that offer.

The claim names the group whose sync took it (`claimed_by`), with a lease (`claimed_at`) as a safety
net, like a page's: a sync that dies after claiming leaves its group's offer pending (the flag is
cleared only after the post), and the group's retry takes its own claim again. Only after the post
does `finish` record the sum as offered; a failed post gives the claim back.

A sync that dies after Slack posted the offer and before `finish` leaves a claim behind, which the next
sync takes over (the group's own, or another's whose lease lapsed). The offer carries message metadata
naming the incident and `through`: the sync that took over a claim (`lapsed`) looks for it in the
channel's history before posting, and records it as made when it is there, as a page's retry does.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy import exists, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts.models import AlertGroup, AlertResolveOffer
from bot.alerts.ports import AlertChat
from bot.clock import utc
from bot.db import Database, upsert_insert
from bot.incidents.models import Incident


@dataclass(frozen=True)
class Cleared:
    """What the incident's channel hears about a group that cleared."""

    still_firing: list[str] = field(default_factory=list)
    offer: bool = False  # this sync holds the claim: it posts the offer
    through: int = 0  # the all-clear the offer covers (sum of the groups' clears)
    covered: list[AlertGroup] = field(default_factory=list)  # groups whose clear needs no message of its own
    lapsed: datetime | None = None  # the claim taken over was made then: its holder may have posted since
    # Other groups whose clear this offer covers and nobody said yet (they cleared at the same instant).
    also_cleared: list[str] = field(default_factory=list)


def still_firing(groups: Sequence[AlertGroup]) -> list[str]:
    """Each title once, by title, with how many groups have it when more than one does."""
    return _titles(g for g in groups if g.status == "firing")


def _titles(groups: Iterable[AlertGroup]) -> list[str]:
    counts = Counter(g.title or "alert" for g in groups)
    return [f"{title} ({n} groups)" if n > 1 else title for title, n in sorted(counts.items())]


async def decide(
    session: AsyncSession,
    *,
    group: AlertGroup,
    linked: Sequence[AlertGroup],
    now: datetime,
    lease_from: datetime,
) -> Cleared:
    """`group` cleared; `linked` are the incident's groups as read now (it among them)."""
    others = [g for g in linked if g.id != group.id]
    still = still_firing(others)
    if still:
        return Cleared(still_firing=still, covered=[group])
    through = sum(g.clears for g in linked)
    won, lapsed = await claim(
        session,
        incident_id=group.incident_id or 0,
        through=through,
        group_id=group.id or 0,
        now=now,
        stale_before=lease_from,
    )
    # Lost: another sync offers (or offered) this all-clear; this group's clear is covered by it, and
    # named in it: the winner read this group as cleared and its clear as not yet said.
    also = _titles(g for g in others if g.resolve_offer_pending) if won else []
    return Cleared(
        offer=won, through=through, covered=[group, *others] if won else [group], lapsed=lapsed, also_cleared=also
    )


async def claim(
    session: AsyncSession, *, incident_id: int, through: int, group_id: int, now: datetime, stale_before: datetime
) -> tuple[bool, datetime | None]:
    """Whether this sync won the claim, and when the claim it took over (if any) was made."""
    await session.exec(
        upsert_insert(session, AlertResolveOffer)
        .values(incident_id=incident_id, offered_through=0)
        .on_conflict_do_nothing(index_elements=["incident_id"])
    )
    held = (
        await session.exec(
            select(AlertResolveOffer.claimed_at).where(
                col(AlertResolveOffer.incident_id) == incident_id, col(AlertResolveOffer.claimed_by).is_not(None)
            )
        )
    ).first()
    free = col(AlertResolveOffer.claimed_by).is_(None)
    takeover = or_(
        free, col(AlertResolveOffer.claimed_by) == group_id, col(AlertResolveOffer.claimed_at) < stale_before
    )
    # Checked again in the claim itself: a group of the incident may have fired again since the read.
    firing = select(AlertGroup.id).where(col(AlertGroup.incident_id) == incident_id, col(AlertGroup.status) == "firing")
    result = await session.exec(
        update(AlertResolveOffer)
        .where(
            col(AlertResolveOffer.incident_id) == incident_id,
            col(AlertResolveOffer.offered_through) < through,
            free if held is None else takeover,
            ~exists(firing),
        )
        .values(claimed_by=group_id, claimed_at=now)
    )
    await session.commit()
    won = bool(result.rowcount == 1)
    return won, (utc(held) if won and held is not None else None)


async def posted_before(chat: AlertChat, db: Database, *, incident: Incident, told: Cleared, group_id: int) -> Cleared:
    """A claim taken over: when its last holder posted the offer before it died, it is recorded as made
    and not posted again."""
    if not told.offer or told.lapsed is None:
        return told
    if not await chat.resolve_offer_posted(incident=incident, through=told.through, since=told.lapsed):
        return told
    async with db.session() as session:
        await finish(session, incident_id=incident.id or 0, through=told.through, group_id=group_id)
    return replace(told, offer=False)


async def finish(session: AsyncSession, *, incident_id: int, through: int, group_id: int) -> None:
    """The offer is posted: this all-clear is covered; only the claim's holder records it."""
    await _held(session, incident_id=incident_id, group_id=group_id, offered_through=through)


async def give_back(session: AsyncSession, *, incident_id: int, group_id: int) -> None:
    """The post failed: the group stays pending and its retry claims again."""
    await _held(session, incident_id=incident_id, group_id=group_id)


async def _held(session: AsyncSession, *, incident_id: int, group_id: int, **values: int) -> None:
    await session.exec(
        update(AlertResolveOffer)
        .where(col(AlertResolveOffer.incident_id) == incident_id, col(AlertResolveOffer.claimed_by) == group_id)
        .values(claimed_by=None, claimed_at=None, **values)
    )
    await session.commit()
