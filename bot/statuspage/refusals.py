"""Outbox rows Statuspage keeps refusing: tried a few times, then given up where people see it.

A refusal is a 4xx that trying again cannot fix (a body Statuspage rejects, a key whose role may not
delete): not a 404 (the thing is gone there; each send says what that means for it), a throttle or a
timeout. Such a row would hold back every later row of its incident for ever, so after `REFUSALS`
attempts it is cancelled, the channel and the timeline say what to do on Statuspage by hand, and
/health warns for `setup.GIVEN_UP_WARNING`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.statuspage import service, timers
from bot.statuspage.atlassian import StatuspageError
from bot.statuspage.flows import page_of
from bot.statuspage.models import PublicUpdate, StatuspageSync, SyncAction
from bot.timeline import events
from bot.timeline import service as timeline

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

REFUSALS = 3
GAVE_UP = "gave up: "
# What the timeline says was given up, and what a person must do on Statuspage instead.
_GIVEN_UP_TEXT = {
    SyncAction.UPDATE: "Statuspage refused the public update ({status}); given up, post it there by hand: {error}",
    SyncAction.EDIT: "Statuspage refused the correction ({status}); given up, correct it there by hand: {error}",
    SyncAction.WITHDRAW: (
        "Statuspage refused to delete the withdrawn incident; given up, delete it there by hand: {error}"
    ),
}


# The API key, not the row: once someone fixes it every row goes out, so updates and corrections wait for
# that (/health warns of a stuck outbox) instead of being given up and posted by hand. A withdrawal refused
# a 403 is a key that may publish but not delete: that one is given up.
_KEY_REFUSED = frozenset({401, 403})


def refused(exc: StatuspageError, action: SyncAction) -> bool:
    """A 4xx other than 404 and the throttles (and 408): Statuspage will answer the same next time."""
    status = exc.status
    if status in _KEY_REFUSED and action != SyncAction.WITHDRAW:
        return False
    return status is not None and 400 <= status < 500 and status != 404 and not exc.transient


def gives_up(row: StatuspageSync, exc: StatuspageError) -> bool:
    return refused(exc, SyncAction(row.action)) and row.attempts >= REFUSALS


async def give_up(
    deps: Deps, row: StatuspageSync, token: str, incident: Incident, update: PublicUpdate, exc: StatuspageError
) -> None:
    """The row stops being retried and the incident's later rows go out; people hear what to do by hand.
    A withdrawal's incident id there is forgotten, as after a delete: once someone has deleted it by hand,
    publishing again creates a new incident there."""
    page = page_of(deps)
    log.error("Statuspage refused the %s of %s %s times (%s): given up", row.action, incident.ref, row.attempts, exc)
    async with deps.db.session() as session:
        now = deps.clock.now()
        reason = f"{GAVE_UP}{exc}"
        if not await timers.cancel_held(
            session, model=StatuspageSync, row_id=row.id or 0, token=token, now=now, reason=reason
        ):
            return
        if row.action == SyncAction.WITHDRAW:
            await service.forget_external_id(session, incident_id=row.incident_id)
        await session.commit()
    text = _GIVEN_UP_TEXT[SyncAction(row.action)].format(status=update.status, error=exc)
    if row.action != SyncAction.WITHDRAW:
        text += f"\n{update.message}"

    def tell() -> Awaitable[None]:
        action = SyncAction(row.action)
        return page.chat.post_sync_given_up(incident=incident, error=str(exc), action=action, update=update)

    await say(deps, incident, row, status=exc.status, text=text, tell=tell)


async def say(
    deps: Deps,
    incident: Incident,
    row: StatuspageSync,
    *,
    status: int | None,
    text: str,
    tell: Callable[[], Awaitable[None]],
) -> None:
    """A failure (Statuspage's HTTP `status`) on the timeline, then in the incident's channel (a channel
    that refuses is only logged)."""
    payload = events.StatuspageSyncEvent(update_id=row.update_id, status=status)
    await timeline.record_now(deps, incident_id=incident.id or 0, text=text, payload=payload)
    await post(incident, tell)


async def post(incident: Incident, tell: Callable[[], Awaitable[None]]) -> None:
    """The channel's part of `say` (a channel that refuses is only logged)."""
    try:
        await tell()
    except ChatError as chat_exc:
        log.warning("could not tell %s of a Statuspage failure: %s", incident.ref, chat_exc)


@dataclass(frozen=True)
class GivenUp:
    incident_id: int
    action: SyncAction


async def given_up(session: AsyncSession, *, since: datetime) -> list[GivenUp]:
    """Rows given up since `since` (for /health): what is still to do on Statuspage by hand."""
    query = (
        select(StatuspageSync.incident_id, StatuspageSync.action)
        .where(col(StatuspageSync.cancelled_at) >= since, col(StatuspageSync.cancel_reason).startswith(GAVE_UP))
        .distinct()
        .order_by(col(StatuspageSync.incident_id), col(StatuspageSync.action))
    )
    return [GivenUp(incident_id=number, action=SyncAction(action)) for number, action in (await session.exec(query))]


async def update_given_up(session: AsyncSession, *, update_id: int) -> bool:
    """The update's own send was given up: it is not on Statuspage (unless posted by hand), so a correction
    of it must not guess which update there to patch."""
    query = select(StatuspageSync.id).where(
        col(StatuspageSync.update_id) == update_id,
        col(StatuspageSync.action) == SyncAction.UPDATE,
        col(StatuspageSync.cancel_reason).startswith(GAVE_UP),
    )
    return (await session.exec(query.limit(1))).first() is not None
