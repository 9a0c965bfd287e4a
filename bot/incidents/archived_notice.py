"""Telling someone that a person archived the open incident's channel, durably.

The bot cannot undo the archive (Slack does not let a bot token call conversations.unarchive), so the
person in charge hears it: the commander, else who acknowledged, else who declared; nobody when that
person archived it themselves (they know). With no person (declared by an alert, nobody took it), a public
incident's notice goes to the announcements channel; a private one's never goes to a channel.

The notice is a timer row (`ArchivedNotice`), planned with the archive's timeline line before Slack's
event is acked (`channels.archived`), so what follows the ack may die without losing it. It is sent after
the ack (`send_due` for that incident) and by the resume sweep (recovery.py: every 30 s, and at start),
each row behind a claim with a lease (`escalation/leases.py`): two replicas, or a sweep and the ack's
send, tell once. Slack failing for a while (rate limits, 5xx, a timeout) is tried again after a back-off
(30 s, 1, 2, 4, 8 min) and given up after `ATTEMPTS`; a refusal (`cannot_dm_bot`, ...) is given up at
once. The timeline says who was told, or why nobody was: given up, or not sent because a person
unarchived the channel or the incident was resolved first. A notice whose outcome is unknown (the process
died after Slack took it, or Slack's answer was lost) is sent again: a rare second notice beats none.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import is_user_id
from bot.deps import Deps
from bot.escalation import leases
from bot.exceptions import ChatError, is_transient
from bot.incidents import channels
from bot.incidents.channels import NOTICE_STEP
from bot.incidents.models import ArchivedNotice, Incident
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

ATTEMPTS = 6  # the first try and five retries, a quarter of an hour or so
RETRY_AFTER = timedelta(seconds=30)  # doubled after each failure
LEASE = leases.DEFAULT_LEASE  # far longer than a DM takes: the Slack client's own timeouts keep it short


async def send_due(deps: Deps, *, incident_id: int | None = None) -> int:
    """Send the due notices this process can claim (one incident's after the ack; the sweep's: all)."""
    now = deps.clock.now()
    query = select(ArchivedNotice.id).where(*leases.claimable(ArchivedNotice, now))
    if incident_id is not None:
        query = query.where(col(ArchivedNotice.incident_id) == incident_id)
    async with deps.db.session() as session:
        ids = [i for i in (await session.exec(query.order_by(col(ArchivedNotice.due_at)).limit(50))).all() if i]
    told = 0
    for row_id in ids:
        try:
            told += await _send_one(deps, row_id)
        except Exception:  # the database failing, a bug: the lease runs out and the sweep tries again
            log.exception("the notice %s of an archived channel failed; the sweep tries again", row_id)
    return told


async def _send_one(deps: Deps, row_id: int) -> int:
    token = leases.new_token()
    async with deps.db.session() as session:
        row = await leases.claim(
            session, model=ArchivedNotice, row_id=row_id, token=token, now=deps.clock.now(), lease=LEASE
        )
    if row is None:
        return 0  # another replica, or the ack's send, has it
    async with deps.db.session() as session:
        incident = await session.get(Incident, row.incident_id, populate_existing=True)
        why_not = await _not_now(session, row, incident)
    if incident is None or why_not is not None:
        await _finish(deps, row, token, text=why_not, sent_to=None)
        return 0
    return await _tell(deps, row, token, incident)


async def _not_now(session: AsyncSession, row: ArchivedNotice, incident: Incident | None) -> str | None:
    """Why the notice is not sent after all ("" when nobody needs to read why), or None to send it."""
    if incident is None:
        return ""
    if not incident.is_open:
        return f"nobody was told the channel was archived: {incident.ref} was resolved first"
    if incident.channel_id != row.channel_id:
        return f"nobody was told <#{row.channel_id}> was archived: it is no longer the incident's channel"
    unarchived_by = await channels.unarchived_by(session, incident_id=row.incident_id, since=row.archived_at)
    if unarchived_by is not None:
        who = f"<@{unarchived_by}>" if is_user_id(unarchived_by) else "someone"
        return f"nobody was told the channel was archived: {who} unarchived it first"
    if row.attempts > ATTEMPTS:  # claimed and lost again and again (a crash, a bug): not for ever
        return f"nobody was told the channel was archived: gave up after {ATTEMPTS} attempts"
    return None


async def _tell(deps: Deps, row: ArchivedNotice, token: str, incident: Incident) -> int:
    """Tell whom it concerns; record who was told, or why nobody was, or retry Slack's blip later."""
    person = next(
        (p for p in (incident.commander, incident.acknowledged_by, incident.declared_by) if is_user_id(p)), None
    )
    if person is not None and person == row.archived_by:
        await _finish(deps, row, token, text="", sent_to=None)  # they archived it themselves: they know
        return 0
    to, why_not = await _whom_to_tell(deps, incident, person)
    if to is None:
        log.warning("%s's channel was archived while open; nobody told: %s", incident.ref, why_not)
        await _finish(deps, row, token, text=f"nobody was told the channel was archived: {why_not}", sent_to=[])
        return 0
    try:
        await deps.incident_chat.tell_channel_archived(to=to, incident=incident, archived_by=row.archived_by)
    except ChatError as exc:
        await _failed(deps, row, token, incident=incident, to=to, exc=exc)
        return 0
    await _finish(deps, row, token, text=f"told {_named(to)} that the channel was archived", sent_to=[to])
    return 1


async def _failed(deps: Deps, row: ArchivedNotice, token: str, *, incident: Incident, to: str, exc: ChatError) -> None:
    """Slack failing for a while: tried again after a back-off, until `ATTEMPTS`. A refusal: given up now."""
    why = f"Slack answered {exc.code}" if exc.code else str(exc)
    if is_transient(exc) and row.attempts < ATTEMPTS:
        retry_at = deps.clock.now() + RETRY_AFTER * 2 ** (row.attempts - 1)
        log.warning("%s's channel was archived while open; telling %s failed (%s), tried again", incident.ref, to, why)
        async with deps.db.session() as session:
            await leases.release(
                session, model=ArchivedNotice, row_id=row.id or 0, token=token, retry_at=retry_at, error=why
            )
        return
    log.error("%s's channel was archived while open; telling %s failed: %s", incident.ref, to, exc)
    text = f"telling {_named(to)} that the channel was archived failed: {why}"
    if is_transient(exc):
        text += f" (gave up after {row.attempts} attempts)"
    await _finish(deps, row, token, text=text, sent_to=None, error=events.ChatError(step=NOTICE_STEP, code=exc.code))


async def _finish(
    deps: Deps,
    row: ArchivedNotice,
    token: str,
    *,
    text: str | None,
    sent_to: list[str] | None,
    error: events.ChatError | None = None,
) -> None:
    """The row done (sent, or not and why) and its timeline line, in one transaction, while the claim is ours.

    `sent_to`: a list (empty: nobody to tell) writes a `Setup` line; None with `error` a `ChatError` one;
    None without, the line `text` says why it was not sent (no line when `text` is empty)."""
    now, row_id = deps.clock.now(), row.id or 0
    done = {"sent_at": now} if sent_to else {"cancelled_at": now, "cancel_reason": (text or "not needed")[:200]}
    async with deps.db.session() as session:
        result = await session.exec(
            update(ArchivedNotice)
            .where(*leases.held(ArchivedNotice, row_id, token))
            .values(claim_token=None, claim_expires_at=None, **done)
        )
        if result.rowcount != 1:
            await session.rollback()  # the lease ran out and another took it over: its outcome is the one
            return
        if text:
            payload: events.Payload = error or events.Setup(
                step=NOTICE_STEP, channel_id=row.channel_id, sent_to=sent_to or []
            )
            await timeline.add(session, incident_id=row.incident_id, at=now, text=text, payload=payload)
        await session.commit()


async def _whom_to_tell(deps: Deps, incident: Incident, person: str | None) -> tuple[str | None, str]:
    """Where the notice goes (a person, or the announcements channel), or None and why not."""
    if person is not None:
        if await deps.incident_access.can_see(person=person, incident=incident):
            return person, ""
        return None, f"{_named(person)}, in charge, may no longer see the incident"
    if incident.private:
        return None, "nobody is in charge, and a private incident is not told in a channel"
    where = deps.settings.config.channels.announcements
    if not where:
        return None, "nobody is in charge, and no announcements channel is set"
    return where, ""


def _named(to: str) -> str:
    """A person or a channel as Slack shows it (`to` is a user ID, a channel ID or a #name)."""
    if is_user_id(to):
        return f"<@{to}>"
    return to if to.startswith("#") else f"<#{to}>"
