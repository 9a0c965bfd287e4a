"""IncidentChannelReady's and IncidentResolved's work: noted done, retried, or given up where people see it.

Their handlers do the work before they return (bot/signals.py), so once every handler returned the
incident notes it done (`channel_ready_at`, `resolve_handled_at`). A crash before that note, or a
handler that failed (Slack refused, the database blinked, a bug), leaves it NULL, and the resume
sweep (recovery.py) publishes the signal again; handlers are idempotent, so what succeeded is not
done twice.

Each failure is a timeline event (`events.UnfinishedWork`: what failed, and when it is tried
again), and those events are the retries' only memory, across restarts: after the Nth failure the
sweep waits `RETRY_AFTER` × 2^(N-1) (30 s, 1, 2, 4, 8 min), and the `ATTEMPTS`th failure, a
quarter of an hour or so after the first, is given up: the work is noted done, and the timeline and the
incident's channel say what was not done, for a person to do by hand. A handler still failing then
is a bug or a long outage, which retrying every 30 s for a day would not fix; a person must know.
A person who presses Retry setup (or a setup run again after the work was noted done) starts a new
series of attempts: the count of an earlier, finished series would give it up at once.

Channel-ready work is retried for open incidents only: once the incident is resolved, a retry still
waiting is dropped and the timeline says so (not the channel: there is nothing left to do by hand).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import utc_text
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents import setup_rows
from bot.incidents.models import Incident
from bot.signals import IncidentChannelReady, IncidentResolved
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind, TimelineEvent

log = logging.getLogger(__name__)

ATTEMPTS = 6  # the first run and five retries
RETRY_AFTER = timedelta(seconds=30)  # doubled after each failure


@dataclass(frozen=True)
class Work:
    signal: str  # stored in the timeline events
    what: str  # said to people
    mark_done: Callable[..., Awaitable[None]]
    done_at: Callable[[Incident], datetime | None]


CHANNEL_READY = Work(
    "channel_ready",
    "the work after the channel was set up",
    setup_rows.mark_channel_ready,
    lambda incident: incident.channel_ready_at,
)
RESOLVED = Work(
    "resolved",
    "the work after the resolve",
    setup_rows.mark_resolve_handled,
    lambda incident: incident.resolve_handled_at,
)


async def deliver(deps: Deps, event: IncidentChannelReady | IncidentResolved, *, by_hand: bool = False) -> None:
    """Publish `event`, then note its work done; when a handler failed, leave that to a retry (or give up).

    `by_hand`: a person asked for it (Retry setup); a failure starts a new series of attempts, since
    the last one may have been given up, and a person retrying expects the bot to try again.
    """
    work = CHANNEL_READY if isinstance(event, IncidentChannelReady) else RESOLVED
    if isinstance(event, IncidentResolved):
        await _drop_channel_ready(deps, incident_id=event.incident_id)
    failed = await deps.bus.publish(event)
    if failed and not await _failed(deps, work, incident_id=event.incident_id, failed=failed, by_hand=by_hand):
        return  # not noted done: the sweep publishes it again once the retry is due
    async with deps.db.session() as session:
        await work.mark_done(session, incident_id=event.incident_id, now=deps.clock.now())


async def _drop_channel_ready(deps: Deps, *, incident_id: int) -> None:
    """At the resolve, channel-ready work waiting for its retry is dropped, and the timeline says so.

    The sweep retries it for open incidents only: a playbook, and inviting and mentioning the people
    paged, are no use once the incident is over, and would only call them back to a closed channel.
    The timeline said "tried again after …": it must not be left saying so, and the post-mortem
    draft (shared by this resolve) reads it.
    """
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is None or incident.channel_ready_at is not None:
            return
        last = (await _last_failures(session, CHANNEL_READY, [incident_id])).get(incident_id)
    if last is None or last.retry_at is None:
        return  # never failed (its first delivery may be under way), or given up already
    listed = "; ".join(last.failed)
    text = f"{CHANNEL_READY.what} was not tried again: {incident.ref} was resolved first (not done: {listed})"
    log.warning("%s: %s", incident.ref, text)
    payload = events.UnfinishedWork(signal=CHANNEL_READY.signal, failed=last.failed, attempt=last.attempt)
    await timeline.record_now(deps, incident_id=incident_id, text=text[0].upper() + text[1:], payload=payload)
    async with deps.db.session() as session:
        await CHANNEL_READY.mark_done(session, incident_id=incident_id, now=deps.clock.now())


async def _failed(deps: Deps, work: Work, *, incident_id: int, failed: list[str], by_hand: bool) -> bool:
    """Record the failure on the timeline; True when no retry follows (the work is then noted done).

    A new series of attempts starts when a person asked, or when the last series was over (the work
    noted done, or given up, before this delivery: a setup run again, resumed or retried).
    """
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
        last = (await _last_failures(session, work, [incident_id])).get(incident_id)
    over = incident is None or work.done_at(incident) is not None
    attempt = 1 if by_hand or over or last is None else last.attempt + 1
    # Channel-ready work is for open incidents only (see `_drop_channel_ready`).
    dropped = incident.ref if work is CHANNEL_READY and incident is not None and not incident.is_open else None
    text, retry_at = _verdict(work, failed=failed, attempt=attempt, now=deps.clock.now(), dropped=dropped)
    log.log(logging.ERROR if retry_at is None and not dropped else logging.WARNING, "INC-%s: %s", incident_id, text)
    payload = events.UnfinishedWork(signal=work.signal, failed=failed, attempt=attempt, retry_at=retry_at)
    await timeline.record_now(deps, incident_id=incident_id, text=text[0].upper() + text[1:], payload=payload)
    if retry_at is not None and over and incident is not None:
        async with deps.db.session() as session:  # noted done by the last series: the sweep must see it again
            await work.mark_done(session, incident_id=incident_id, now=None)
    elif retry_at is None and not dropped:
        await _tell_channel(deps, work, incident_id=incident_id, failed=failed)
    return retry_at is None


def _verdict(
    work: Work, *, failed: list[str], attempt: int, now: datetime, dropped: str | None
) -> tuple[str, datetime | None]:
    """What the timeline says of a failure, and when it is tried again (None: never)."""
    listed = "; ".join(failed)
    if dropped is not None:
        return f"{work.what} failed ({listed}) and is not tried again: {dropped} is resolved", None
    if attempt >= ATTEMPTS:
        return f"{work.what} failed {attempt} times and was given up; to do by hand: {listed}", None
    retry_at = now + RETRY_AFTER * 2 ** (attempt - 1)
    return f"{work.what} failed ({listed}); tried again after {utc_text(retry_at, '%H:%M:%S')}", retry_at


async def _tell_channel(deps: Deps, work: Work, *, incident_id: int, failed: list[str]) -> None:
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
    if incident is None or not incident.channel_id:
        return
    text = (
        f":warning: {work.what[0].upper()}{work.what[1:]} kept failing and the bot has stopped trying. "
        f"Please do it by hand: {'; '.join(failed)}."
    )
    try:
        await deps.incident_chat.post_line(channel_id=incident.channel_id, text=text)
    except ChatError as exc:
        log.error("INC-%s: could not say in its channel that %s was given up: %s", incident_id, work.what, exc)


async def due(deps: Deps, work: Work, incidents: Sequence[Incident]) -> list[Incident]:
    """Of the incidents whose work is not noted done, those to publish again now.

    Never failed: a crash lost it, due now. Failed: due once its retry time has passed; given up: never.
    """
    if not incidents:
        return []
    async with deps.db.session() as session:
        last = await _last_failures(session, work, [incident.id or 0 for incident in incidents])
    now = deps.clock.now()
    return [i for i in incidents if (f := last.get(i.id or 0)) is None or _retry_due(f.retry_at, now)]


def _retry_due(retry_at: datetime | None, now: datetime) -> bool:
    return retry_at is not None and retry_at <= now


async def _last_failures(
    session: AsyncSession, work: Work, incident_ids: Collection[int]
) -> dict[int, events.UnfinishedWork]:
    """Each incident's latest failure of `work`, if any."""
    rows = await session.exec(
        select(TimelineEvent)
        .where(col(TimelineEvent.incident_id).in_(incident_ids), TimelineEvent.kind == Kind.UNFINISHED_WORK)
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
    )
    latest: dict[int, events.UnfinishedWork] = {}
    for row in rows.all():
        payload = events.read_as(row, events.UnfinishedWork)
        if payload.signal == work.signal:
            latest[row.incident_id] = payload  # later rows replace earlier ones
    return latest
