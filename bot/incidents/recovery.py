"""Setups a crash interrupted are finished: at start-up and by a sweep, once their lease expired.

A kill -9 between committing the incident and saving the last of its setup left the incident
without a channel, summary or announcement, its lease held by a dead process, and nobody told.
`resume_setups` finds those incidents (`setup_rows.unfinished_setups`), runs the setup again as Retry
does (an orphan channel, summary or announcement made before the crash is found and reused), and
tells the declarer. The sweep only wakes the check; the database says what is due, and the
setup's lease makes two replicas resume an incident once.

A kill -9 after a setup ended but before IncidentChannelReady's work was done (the people paged
meanwhile invited and mentioned, the playbook started), or a handler of it that failed, left
`channel_ready_at` NULL: the sweep publishes the signal again (`redo_channel_ready`); its handlers
are idempotent.

The same for a resolve: a kill -9 after it was committed but before IncidentResolved's work was done
(pages cancelled, the post-mortem chase planned, PagerDuty told, the draft shared), or a failed
handler, left `resolve_handled_at` NULL, and `redo_resolved` publishes the signal again.

The sweep also sends the notices of channels a person archived while their incident was open
(`archived_notice`): due at once, so what it finds is one a crash after the ack lost, or a retry after
Slack failed.

A failed handler's work is retried with a back-off and given up, where people see it, after a few
attempts (`signal_work`); a crash's is redone at the next check. Either way only once its grace
has passed: two minutes after the declaration (its own setup is done with it), three after the
resolve (its handlers may still be running).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Collection
from datetime import timedelta

from bot.config import is_user_id
from bot.deps import Deps
from bot.exceptions import ChatError, InvalidState
from bot.incidents import archived_notice, flows, setup_rows, signal_work, standing
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

# How often the sweep looks; a lease is two minutes, so an interrupted setup resumes within
# about two and a half minutes of the crash even when the bot restarted at once.
SWEEP_EVERY = timedelta(seconds=30)


async def resume_setups(deps: Deps) -> list[int]:
    """Finish every setup a crash interrupted; returns the incidents resumed by this call."""
    async with deps.db.session() as session:
        stranded = await setup_rows.unfinished_setups(session, now=deps.clock.now())
    resumed = []
    for incident in stranded:
        number = incident.id or 0
        log.warning("resuming the setup of %s, interrupted (the bot stopped)", incident.ref)
        try:
            async with deps.priority.later():
                outcome = await flows.finish_setup(deps, incident_id=number, actor=incident.declared_by, retry=True)
        except InvalidState:
            continue  # another replica resumed it first
        except Exception:
            log.exception("resuming the setup of %s failed; the sweep tries again", incident.ref)
            continue
        resumed.append(number)
        what = "; ".join(outcome.problems) or "finished"
        await timeline.record_now(
            deps,
            incident_id=number,
            text=f"setup resumed after the bot stopped while setting it up: {what}",
            payload=events.Setup(step="resume", problems=list(outcome.problems)),
        )
        if is_user_id(outcome.incident.declared_by):
            try:
                await deps.incident_chat.tell_setup_resumed(incident=outcome.incident, problems=outcome.problems)
            except ChatError as exc:
                log.warning("could not tell %s's declarer that its setup resumed: %s", incident.ref, exc)
    return resumed


async def redo_channel_ready(deps: Deps, *, resumed: Collection[int] = ()) -> list[int]:
    """Publish IncidentChannelReady again where its work is not done (a crash, a failed handler whose
    retry is due); returns those incidents. `resumed`: setups just resumed, whose own end publishes it.
    """
    async with deps.db.session() as session:
        lost = await setup_rows.channels_not_ready(session, now=deps.clock.now())
    lost = await signal_work.due(deps, signal_work.CHANNEL_READY, [i for i in lost if i.id not in resumed])
    for incident in lost:
        log.warning("%s: its channel's follow-up work is not done (a crash or a failure): doing it now", incident.ref)
        await flows.channel_ready(deps, incident_id=incident.id or 0, actor=incident.declared_by)
    return [incident.id or 0 for incident in lost]


async def redo_resolved(deps: Deps) -> list[int]:
    """Publish IncidentResolved again where its work is not done (a crash, a failed handler whose retry
    is due); returns those incidents."""
    async with deps.db.session() as session:
        lost = await setup_rows.resolves_not_handled(session, now=deps.clock.now())
    lost = await signal_work.due(deps, signal_work.RESOLVED, lost)
    for incident in lost:
        log.warning("%s: its resolve's follow-up work is not done (a crash or a failure): doing it now", incident.ref)
        # A crash before it left the summary and topic saying "investigating".
        await standing.refresh(deps, incident_id=incident.id or 0)
        await flows.resolved(deps, incident_id=incident.id or 0, actor=incident.resolved_by)
    return [incident.id or 0 for incident in lost]


async def check(deps: Deps) -> None:
    """What the sweep does: resume interrupted setups, then redo lost channel-ready and resolve work, then
    send the notices of archived channels that are due (a crash after the ack, a retry after Slack failed)."""
    resumed = await resume_setups(deps)
    await redo_channel_ready(deps, resumed=resumed)
    await redo_resolved(deps)
    await archived_notice.send_due(deps)


class Sweep:
    """Runs `check` at start-up and every `every` until stopped; a failed check is logged, not fatal.

    Between checks nothing runs: a timer (`call_later`), not a task that sleeps, so whoever waits
    for the bot's work to settle (a drain, a test) waits for a check in progress only.
    """

    def __init__(self, check: Callable[[], Awaitable[object]], *, every: timedelta, name: str) -> None:
        self.check = check
        self.every = every
        self.name = name
        self.ran = asyncio.Event()  # set once the first check has run (tests wait on it, not on time)
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopped = False

    async def start(self) -> None:
        self._stopped = False
        self._fire()

    async def stop(self) -> None:
        self._stopped = True
        if self._timer is not None:
            self._timer.cancel()
        if self._task is not None and not self._task.done():
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _fire(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name=self.name)

    async def _run(self) -> None:
        try:
            await self.check()
        except Exception:
            log.exception("%s failed; trying again in %s", self.name, self.every)
        finally:
            self.ran.set()
            if not self._stopped:
                self._timer = asyncio.get_running_loop().call_later(self.every.total_seconds(), self._fire)


def setup(deps: Deps) -> None:
    sweep = Sweep(lambda: check(deps), every=SWEEP_EVERY, name="resume interrupted setups")
    deps.setup_sweep = sweep
    deps.on_start.append(sweep.start)
    deps.on_stop.insert(0, sweep.stop)
