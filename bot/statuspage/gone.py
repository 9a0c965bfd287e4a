"""What Statuspage answers 404 to on an incident there: an incident deleted there, or no such page.

An incident deleted on Statuspage by hand (its page still answers) was removed there on purpose or by
mistake; either way the bot does not put it back on its own, and does not retry for ever either (that would
hold back every later row of the incident). The update that met the 404, and the updates and corrections
already queued behind it (written for the incident that is gone), are not sent; the incident's id there is
forgotten; the channel and the timeline say so once, with the command that publishes it again. A person's
next `/incident publish` creates a new incident there, as a publish after a withdrawal does: by then people
have been told, so it is their decision. The "resolved" update a resolve writes on its own is not sent there
(`flows.deleted_there`): it would create an incident already resolved, and notify its subscribers, for
what someone took off Statuspage.

A page that answers 404 is configuration (a wrong `page_id`): nothing is skipped, every row waits and is
retried, and /health says which page id was not found at once, not after the generic outbox delay. That
holds for updates, corrections and withdrawals alike (`told_apart`); a correction or a withdrawal that
meets a deleted incident has nothing left to do there, and is done.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.incidents.models import Incident
from bot.statuspage import refusals, service, timers
from bot.statuspage.atlassian import NotThere, PageNotFound, Statuspage, StatuspageError
from bot.statuspage.flows import page_of
from bot.statuspage.models import DELETED_THERE, PublicUpdate, StatuspageSync, SyncAction
from bot.timeline import events
from bot.timeline import service as timeline

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)


class IncidentGone(StatuspageError):
    """Adding an update answered 404 while the page answers: the incident was deleted on Statuspage."""

    def __init__(self, external: str, exc: StatuspageError) -> None:
        super().__init__(f"incident {external} is no longer on Statuspage ({exc})", status=404, transient=False)


async def after_404(client: Statuspage, *, external: str, exc: StatuspageError) -> StatuspageError:
    """The error a 404 on a call on `external` stands for (a read of the page tells which)."""
    return IncidentGone(external, exc) if await client.page_found() else PageNotFound(client.page_id)


@contextlib.asynccontextmanager
async def told_apart(client: Statuspage, *, external: str) -> AsyncIterator[None]:
    """Calls on the incident `external` there (an update, a correction, a withdrawal): their 404 is raised
    as `IncidentGone` or `PageNotFound`, so each send says what a deleted incident means for it, and a
    wrong page id waits (and /health names it) whichever send met it."""
    try:
        yield
    except NotThere as exc:
        raise await after_404(client, external=external, exc=exc) from exc


async def skip(deps: Deps, row: StatuspageSync, token: str, incident: Incident, update: PublicUpdate) -> None:
    """This row and the updates queued behind it are dropped, the id there forgotten, the timeline told: one
    transaction, which only the holder of the row's claim commits (a crash before it leaves the row to be
    tried again, all of it undone). The channel hears it after the commit, so at most once: a crash between
    the two leaves it on the timeline only, the lesser harm next to telling it twice."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        reason = f"{DELETED_THERE}{incident.ref} was deleted on Statuspage"
        if not await timers.cancel_held(
            session, model=StatuspageSync, row_id=row.id or 0, token=token, now=now, reason=reason
        ):
            return
        behind = await _drop_queued(session, incident_id=row.incident_id, after=row.id or 0, now=now)
        await service.forget_external_id(session, incident_id=row.incident_id)
        later = f" (and {behind} more queued behind it)" if behind else ""
        text = (
            f"{incident.ref} was deleted on Statuspage: this *{update.status}* update{later} was not published "
            f"there; `/incident publish <message>` again creates a new incident there:\n{update.message}"
        )
        payload = events.StatuspageSyncEvent(update_id=row.update_id, status=404)
        await timeline.add(session, incident_id=incident.id or 0, at=now, text=text, payload=payload)
        await session.commit()
    log.warning("%s was deleted on Statuspage by hand: %s update(s) not sent there", incident.ref, behind + 1)
    page = page_of(deps)

    def tell() -> Awaitable[None]:
        return page.chat.post_sync_deleted_there(incident=incident, update=update, skipped=behind)

    await refusals.post(incident, tell)


async def _drop_queued(session: AsyncSession, *, incident_id: int, after: int, now: datetime) -> int:
    """Updates and corrections queued behind the one that met the 404 (a withdrawal still goes: it finds
    nothing there and is done)."""
    result = await session.exec(
        update(StatuspageSync)
        .where(
            col(StatuspageSync.incident_id) == incident_id,
            col(StatuspageSync.id) > after,
            col(StatuspageSync.action) != SyncAction.WITHDRAW,
            *timers.pending(StatuspageSync),
        )
        .values(cancelled_at=now, cancel_reason=f"{DELETED_THERE}queued behind an update that met the deletion")
    )
    return int(result.rowcount or 0)


async def page_missing(session: AsyncSession) -> tuple[str, int] | None:
    """The page-not-found error rows wait on, and how many rows wait (for /health)."""
    query = select(func.min(StatuspageSync.error), func.count()).where(
        *timers.pending(StatuspageSync), col(StatuspageSync.error).startswith(PageNotFound.PREFIX)
    )
    error, count = (await session.exec(query)).one()
    return None if not count or error is None else (str(error), int(count))
