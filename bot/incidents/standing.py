"""The incident's standing messages, kept in step with the row: the channel's topic, its pinned summary and
the announcement.

The summary and the announcement are edited in place, and a person may delete either. The summary is
the channel's one current view of the incident (pinned, with its buttons), so it is posted and pinned
again, once however many updates race to notice. Deleting the announcement is someone's choice to take
the incident out of the announcements channel: it is no longer updated, and a resumed setup does not
post it again (`announcement_ts` is then "", see `setup_rows.forget_announcement`).

Two changes at once (a severity and a role, a status update and an ack) each refresh all three. Nothing
orders their edits in Slack, nor their restates of the summary's stored text, so the older rendering
could land last. Refreshes of one incident are serialised per process, and each renders the row read
inside its turn: the last to run shows the newest state. Across two replicas nothing orders them, so a
refresh reads the row again once Slack has its edits, and renders again if it changed meanwhile: a
change committed after that read is refreshed by its own replica, whose edits then land last.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from bot.deps import Deps
from bot.exceptions import ChatError, MessageGone
from bot.incidents import service, setup_rows
from bot.incidents.models import Incident
from bot.timeline import own

log = logging.getLogger(__name__)

Gone = Callable[[Deps, Incident], Awaitable[list[str]]]


async def refresh(deps: Deps, *, incident_id: int) -> list[str]:
    """Update topic, summary and announcement at once, from the row as it is now (one refresh at a time
    per incident, so an older rendering never lands after a newer one); what failed is returned."""
    if deps.standing_locks.busy(incident_id):
        log.debug("INC-%s: its messages are being refreshed; this refresh runs next", incident_id)
    async with deps.standing_locks.hold(incident_id):
        incident = await _read(deps, incident_id)
        for _ in range(ROUNDS):
            problems = await _refresh(deps, incident)
            now = await _read(deps, incident_id)
            if _shown(now) == _shown(incident) or deps.standing_locks.queued(incident_id):
                break  # unchanged, or the refresh waiting its turn here reads it after this one
            log.info("%s changed while its messages were refreshed (on another replica): refreshing again", now.ref)
            incident = now
        return problems


# Renderings of one refresh, at most: a row that keeps changing is left to the refreshes of its changes.
ROUNDS = 3
# What a refresh itself writes (a summary posted again, an announcement forgotten), not what it shows.
_OWN_WRITES = {"summary_ts", "announcement_ts", "updated_at"}


async def _read(deps: Deps, incident_id: int) -> Incident:
    async with deps.db.session() as session:
        return await service.get(session, number=incident_id)


def _shown(incident: Incident) -> dict[str, object]:
    return incident.model_dump(exclude=_OWN_WRITES)


async def _refresh(deps: Deps, incident: Incident) -> list[str]:
    chat = deps.incident_chat
    steps: list[tuple[str, Callable[[], Awaitable[None]], Gone | None]] = []
    if incident.channel_id:
        steps.append(("updating the topic", lambda: chat.set_topic(incident=incident), None))
    if incident.summary_ts:
        steps.append(("updating the summary", lambda: _refresh_summary(deps, incident), _post_summary_again))
    if incident.announcement_ts:
        announcement = ("updating the announcement", lambda: chat.refresh_announcement(incident=incident))
        steps.append((*announcement, _forget_announcement))
    results = await asyncio.gather(*(run() for _, run, _ in steps), return_exceptions=True)
    problems = []
    for (step, _, gone), result in zip(steps, results, strict=True):
        if isinstance(result, MessageGone) and gone is not None:
            problems += await gone(deps, incident)
        elif isinstance(result, ChatError):
            log.warning("%s for %s failed: %s", step, incident.ref, result)
            problems.append(f"{step} failed ({result.code or result})")
        elif isinstance(result, BaseException):
            raise result
    return problems


async def _refresh_summary(deps: Deps, incident: Incident) -> None:
    """Edit the summary; a person's 📌 on it keeps what it says now (Slack does not tell the bot of its own edits)."""
    assert incident.channel_id and incident.summary_ts
    text = await deps.incident_chat.refresh_summary(incident=incident)
    await own.restate(deps, channel_id=incident.channel_id, message_ts=incident.summary_ts, text=text)


async def _post_summary_again(deps: Deps, incident: Incident) -> list[str]:
    assert incident.id is not None and incident.channel_id and incident.summary_ts
    chat = deps.incident_chat
    try:
        ts = await chat.post_summary(incident=incident)
    except ChatError as exc:
        return [f"posting the deleted summary again failed ({exc.code or exc})"]
    async with deps.db.session() as session:
        kept = await setup_rows.replace_summary(
            session, incident_id=incident.id, old=incident.summary_ts, new=ts, now=deps.clock.now()
        )
    if not kept:  # another update of the same incident posted it again first: one summary is enough
        try:
            await chat.delete_post(channel_id=incident.channel_id, ts=ts)
        except ChatError as exc:
            log.warning("%s: could not delete a second summary %s: %s", incident.ref, ts, exc)
        return []
    log.info("%s: the summary was deleted in Slack; posted it again", incident.ref)
    try:
        await chat.pin(channel_id=incident.channel_id, message_ts=ts)
    except ChatError as exc:
        return [f"pinning the summary again failed ({exc.code or exc})"]
    return []


async def _forget_announcement(deps: Deps, incident: Incident) -> list[str]:
    assert incident.id is not None and incident.announcement_ts
    async with deps.db.session() as session:
        await setup_rows.forget_announcement(
            session, incident_id=incident.id, old=incident.announcement_ts, now=deps.clock.now()
        )
    log.info("%s: the announcement was deleted in Slack; it is no longer updated", incident.ref)
    return []
