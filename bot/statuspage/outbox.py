"""The Statuspage outbox: each row sent in order per incident, retried with a growing back-off.

A row sends an update (creating the incident there on the first), corrects an update's body
(`corrections`), or withdraws the incident. The row was committed with the change it carries.
A 404 on an incident there is an incident deleted there by hand, or a wrong page id: `gone`.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from datetime import timedelta
from typing import TYPE_CHECKING

from bot.clock import utc
from bot.exceptions import ChatError
from bot.incidents import service as incidents
from bot.incidents.models import Incident
from bot.statuspage import gone, refusals, service, timers
from bot.statuspage.atlassian import IncidentChange, NotThere, PageNotFound, Statuspage, StatuspageError
from bot.statuspage.flows import page_of
from bot.statuspage.models import ComponentStatus, PublicUpdate, StatuspageSync, SyncAction
from bot.timeline import events
from bot.timeline import service as timeline

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)

SYNC_BACKOFF = (timedelta(seconds=30), timedelta(minutes=1), timedelta(minutes=2), timedelta(minutes=5))
SYNC_MAX_BACKOFF = timedelta(minutes=15)
SYNC_LEASE = timedelta(minutes=5)  # paced calls with 420/429 retries can take a while


def backoff(attempts: int) -> timedelta:
    return SYNC_BACKOFF[attempts - 1] if 0 < attempts <= len(SYNC_BACKOFF) else SYNC_MAX_BACKOFF


async def _change(deps: Deps, update: PublicUpdate) -> IncidentChange:
    """The update as Statuspage takes it: each component this incident touched, no better than others say."""
    page = page_of(deps)
    async with deps.db.session() as session:
        history = [
            u for u in await service.updates(session, incident_id=update.incident_id) if (u.id or 0) <= (update.id or 0)
        ]
        others = await service.open_component_statuses(session, besides=update.incident_id)
    touched = {c for u in history for c in u.components}
    ok = ComponentStatus.OPERATIONAL  # the components are the page's: another open incident may hold one down
    statuses: dict[str, str] = {}
    for component in sorted(touched):
        status = max(update.status_of(component), others.get(component, ok), key=lambda s: s.rank)
        for component_id in page.statuspage_ids(component):
            if statuses.get(component_id) is None or ComponentStatus(statuses[component_id]).rank < status.rank:
                statuses[component_id] = status.value
    return IncidentChange(
        name=update.title, status=update.status, body=update.message, impact=update.impact, components=statuses
    )


async def sync_one(deps: Deps, *, row_id: int) -> bool:
    """Send one outbox row to Statuspage (create the incident there on the first); retried on failure.
    True when the row is done with (sent, or given up after refusals)."""
    page = page_of(deps)
    client = page.statuspage
    assert client is not None
    token = timers.new_token()
    async with deps.db.session() as session:
        row = await timers.claim(
            session, model=StatuspageSync, row_id=row_id, token=token, now=deps.clock.now(), lease=SYNC_LEASE
        )
        if row is None:
            return False
        update = await session.get(PublicUpdate, row.update_id)
        incident = await incidents.get(session, number=row.incident_id)
        external = await service.external_id(session, incident_id=row.incident_id)
        assert update is not None
        # Made private after it was published, or withdrawn since: nothing more of it goes out.
        stale = "private" if incident.private else _withdrawn(row, update)
        if stale:
            now = deps.clock.now()
            await timers.cancel(session, model=StatuspageSync, row_id=row_id, token=token, now=now, reason=stale)
            return False
    try:
        await _send(deps, client, row, update, incident, external)
    except StatuspageError as exc:
        # A row given up counts as done: the incident's later rows go out now.
        return await _sync_failed(deps, row, token, incident, update, exc)
    async with deps.db.session() as session:
        done = await timers.mark_sent(session, model=StatuspageSync, row_id=row_id, token=token, now=deps.clock.now())
    if done is None:
        return False  # taken over (its lease ran out while Statuspage was slow): the taker finishes and tells
    if row.told_failure:
        await timeline.record_now(
            deps,
            incident_id=incident.id or 0,
            text="Statuspage is up to date again",
            payload=events.StatuspageSyncEvent(),
        )
        try:
            await page.chat.post_sync_recovered(incident=incident)
        except ChatError as exc:
            log.warning("could not tell %s that Statuspage caught up: %s", incident.ref, exc)
    return True


def _withdrawn(row: StatuspageSync, update: PublicUpdate) -> str | None:
    """An update or a correction of an incident withdrawn since is not sent (the withdrawal deletes it)."""
    return "withdrawn" if update.withdrawn_at is not None and row.action != SyncAction.WITHDRAW else None


async def _send(
    deps: Deps, client: Statuspage, row: StatuspageSync, update: PublicUpdate, incident: Incident, external: str | None
) -> None:
    if row.action == SyncAction.EDIT:
        await _send_edit(deps, client, update, external)
    elif row.action == SyncAction.WITHDRAW:
        await _send_withdrawal(deps, client, update, incident, external)
    else:
        change = await _change(deps, update)
        if external is None:
            there = await _create_once(deps, client, row, incident, change)
        else:
            there = await _add_update(client, external, change)
        if there is not None:
            async with deps.db.session() as session:
                await service.save_statuspage_update_id(session, update_id=update.id or 0, external=there)


async def _add_update(client: Statuspage, external: str, change: IncidentChange) -> str | None:
    """Its 404 is told apart: the incident deleted there (skipped, `gone`) or the page not there (retried)."""
    async with gone.told_apart(client, external=external):
        return await client.update_incident(external, change)


async def _send_edit(deps: Deps, client: Statuspage, update: PublicUpdate, external: str | None) -> None:
    """The update's current text onto the incident update it became there, by the id its answer gave.
    A 404 with the page there (the incident or the update deleted there by hand) leaves nothing to correct:
    logged, skipped; one from the page (a wrong page id) waits like an update."""
    if external is None:
        return  # never reached Statuspage (made private before): nothing there to correct
    if update.statuspage_update_id is None:
        async with deps.db.session() as session:
            if await refusals.update_given_up(session, update_id=update.id or 0):
                # Not there (or posted by hand): guessing would patch another update of the same status.
                log.warning("INC-%s: its update never reached Statuspage; nothing to correct", update.incident_id)
                return
    try:
        async with gone.told_apart(client, external=external):
            target = update.statuspage_update_id or await _guess_update_id(client, update, external)
            if target is None:
                log.warning("INC-%s: Statuspage has no %s update to correct", update.incident_id, update.status)
                return
            await client.edit_update(external, target, body=update.message)
    except gone.IncidentGone:
        log.warning("INC-%s: its update on Statuspage was deleted there; nothing to correct", update.incident_id)


async def _guess_update_id(client: Statuspage, update: PublicUpdate, external: str) -> str | None:
    """Fallback for an update sent before its id there was stored (revision 0012), or whose answer did not
    show it: the newest update there with its status. That may be the wrong one (two updates with the
    same status, or one added by hand on Statuspage since), which is why the id is stored now."""
    there = await client.incident_updates(external)
    target = next((u for u in there if u.get("status") == update.status and u.get("id")), None)
    return None if target is None else str(target["id"])


async def _send_withdrawal(
    deps: Deps, client: Statuspage, update: PublicUpdate, incident: Incident, external: str | None
) -> None:
    """Components back to what the other open incidents say, then the incident deleted there (a 404 for
    either with the page there: someone deleted it there by hand, and that is what a withdrawal wants; a
    404 from the page, a wrong page id, waits like an update)."""
    if external is None:  # a create whose answer was lost may still have made it
        external = await client.find_unresolved(marker=marker_of(incident))
    if external is None:
        return
    page = page_of(deps)
    async with deps.db.session() as session:
        touched = await service.touched_components(session, incident_id=update.incident_id)
        others = await service.open_component_statuses(session, besides=update.incident_id)
    statuses: dict[str, str] = {}
    for component in sorted(touched):
        status = others.get(component, ComponentStatus.OPERATIONAL)
        for component_id in page.statuspage_ids(component):
            if statuses.get(component_id) is None or ComponentStatus(statuses[component_id]).rank < status.rank:
                statuses[component_id] = status.value
    try:
        async with gone.told_apart(client, external=external):
            if statuses:
                await client.set_components(external, statuses)
            await client.delete_incident(external)
    except gone.IncidentGone:
        log.warning("%s was deleted on Statuspage by hand already", incident.ref)  # as a delete's 404
    async with deps.db.session() as session:
        await service.forget_external_id(session, incident_id=update.incident_id)
        await session.commit()


def marker_of(incident: Incident) -> str:
    """What the incident is known by at Statuspage before its id is stored (its metadata): ours, per incident."""
    return f"{incident.ref}@{int(utc(incident.declared_at).timestamp())}"


async def _create_once(
    deps: Deps, client: Statuspage, row: StatuspageSync, incident: Incident, change: IncidentChange
) -> str | None:
    """Create the incident there, unless an earlier try of this row did and its answer was lost (a
    timeout, a 5xx, a crash before the id was stored): then it is among the page's unresolved
    incidents with our marker, this update is already on it, and it is only recorded.
    Returns the id of the incident update this row became there, when the answer shows it."""
    marker = marker_of(incident)
    try:
        found = await client.adopt(marker=marker, change=change) if row.attempts > 1 else None
        if found is not None:
            log.warning("%s was on Statuspage already (an earlier create's answer was lost)", incident.ref)
        external, there = found or await client.create_incident(change, marker=marker)
    except NotThere as exc:
        raise PageNotFound(client.page_id) from exc  # the incidents of the page: the page is not there
    async with deps.db.session() as session:
        await service.save_external_id(session, incident_id=row.incident_id, external=external, now=deps.clock.now())
    return there


async def _sync_failed(
    deps: Deps, row: StatuspageSync, token: str, incident: Incident, update: PublicUpdate, exc: StatuspageError
) -> bool:
    page = page_of(deps)
    if isinstance(exc, gone.IncidentGone):
        await gone.skip(deps, row, token, incident, update)
        return True
    if refusals.gives_up(row, exc):
        await refusals.give_up(deps, row, token, incident, update, exc)
        return True
    wait = backoff(row.attempts)
    retry_at = deps.clock.now() + wait
    log.warning("Statuspage sync of %s failed (%s); retrying in %s", incident.ref, exc, wait)
    async with deps.db.session() as session:
        released = await timers.release(
            session,
            model=StatuspageSync,
            row_id=row.id or 0,
            token=token,
            retry_at=retry_at,
            error=str(exc),
            told_failure=True,
        )
    if not released:
        return False  # taken over (its lease ran out) or cancelled meanwhile: not ours to retry, nor to tell
    page.wake_at(retry_at)
    if row.told_failure:
        return False

    def tell() -> Awaitable[None]:
        return page.chat.post_sync_problem(incident=incident, error=str(exc), retry_in=wait)

    await refusals.say(deps, incident, row, status=exc.status, text=f"Statuspage sync failed: {exc}", tell=tell)
    return False
