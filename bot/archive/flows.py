"""Archive resolved incidents' channels when their timer is due.

On resolve a timer row is planned (`channels.archive_after` later). APScheduler only wakes the
process: a date job at the next due time and a sweep every minute (rows planned by another
replica, a lost wake-up, a planning lost to a crash or a database blip). Each due row is claimed
with a conditional UPDATE that also requires the incident to be resolved, so a channel is archived
once across replicas and never while its incident is open; the claim's lease is renewed while this
process works on it, so Slack slower than the lease does not hand it to another. At start-up the
sweep runs at once: what fell due while the bot was down goes now.

A channel a person unarchived after the resolution (to go on with the post-mortem, say) is left
unarchived: a claimed row whose incident's timeline has that unarchive is cancelled, whether the
channel was archived by a person before the timer was due or by an attempt of the bot's whose answer
was lost (its retry would archive it again). A later resolution plans it again.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from functools import partial

from apscheduler.schedulers.asyncio import AsyncIOScheduler
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.archive import giveup, service
from bot.archive.models import ChannelArchive
from bot.archive.ports import ArchiveChat, Goodbye
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.channels import unarchived_by
from bot.incidents.models import Incident, Status
from bot.signals import IncidentResolved
from bot.tasks import RunGate, renew_every, renewing
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind, TimelineEvent

log = logging.getLogger(__name__)

SWEEP_EVERY = timedelta(minutes=1)
RECOVER_WINDOW = timedelta(days=1)  # how far past archive_after a lost timer is still planned
# Slack says the channel is gone or archived already: nothing left to do (but see `_hidden`).
DONE_ALREADY = {"already_archived", "channel_not_found", "is_archived"}
# Slack will never allow it: give up (on the row, the timeline and told to people) instead of retrying
# forever. method_not_supported_for_channel_type: the bot cannot join the channel again to archive it.
NEVER = {
    "cant_archive_general",
    "cant_archive_required",
    "not_in_channel",
    "restricted_action",
    "missing_scope",
    "method_not_supported_for_channel_type",
}
MAX_ATTEMPTS = 8


def retry_delay(attempts: int) -> timedelta:
    return timedelta(seconds=min(3600, 30 * 2 ** min(attempts, 8)))


class Archiver:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.after = deps.settings.config.channels.archive_after
        self._scheduler: AsyncIOScheduler | None = None
        self._gate = RunGate()

    @property
    def running(self) -> bool:
        return self._scheduler is not None and self._scheduler.running

    @property
    def chat(self) -> ArchiveChat:
        if self.deps.archive_chat is None:
            raise RuntimeError("archive chat adapter not set up")
        return self.deps.archive_chat

    # --- planning -----------------------------------------------------------------------------

    async def on_resolved(self, event: IncidentResolved) -> None:
        self.deps.background.spawn(self.plan(event.incident_id), f"plan archiving INC-{event.incident_id}")

    async def plan(self, incident_id: int) -> None:
        if self.after is None:
            return
        async with self.deps.db.session() as session:
            incident = await session.get(Incident, incident_id, populate_existing=True)
            if incident is None or incident.status != Status.RESOLVED or not incident.channel_id:
                return
            due = (incident.resolved_at or self.deps.clock.now()) + self.after
            await service.plan(
                session, incident_id=incident_id, channel_id=incident.channel_id, due_at=due, now=self.deps.clock.now()
            )
        self.wake_at(due)

    # --- running ------------------------------------------------------------------------------

    async def run_due(self) -> int:
        """Archive every due channel this process can claim; returns how many were archived."""
        async with self._gate.turn() as open_:
            if not open_:
                return 0
            now = self.deps.clock.now()
            async with self.deps.db.session() as session:
                ids = await service.due_ids(session, now=now)
            done = 0
            for row_id in ids:
                try:
                    done += await self._one(row_id)
                except Exception:
                    log.exception("archiving (timer %s) failed", row_id)
            await self._rearm()
            return done

    async def _one(self, row_id: int) -> int:
        now = self.deps.clock.now()
        async with self.deps.db.session() as session:
            claimed = await service.claim(session, row_id=row_id, now=now)
        if claimed is None:
            return 0
        row, token = claimed
        if await self._unarchived(row, token, now=now):
            return 0
        async with renewing(partial(self._renew, row_id, token), every=RENEW_EVERY, what=f"archive timer {row_id}"):
            try:
                return await self._archive(row, token, now=now)
            except Exception as exc:  # a Slack refusal, a database error after the claim, a bug: an attempt
                return await self._failed(row, token, exc)

    async def _unarchived(self, row: ChannelArchive, token: str, *, now: datetime) -> bool:
        """A person unarchived the channel since the incident was resolved: the timer is cancelled, not run."""
        async with self.deps.db.session() as session:
            incident = await session.get(Incident, row.incident_id, populate_existing=True)
            since = incident.resolved_at if incident is not None else None
            who = await unarchived_by(session, incident_id=row.incident_id, since=since)
            if who is None:
                return False
            reason = f"{who or 'someone'} unarchived the channel after the resolution"
            await service.leave(session, row_id=row.id or 0, token=token, now=now, reason=reason)
        log.info("INC-%s's channel is left unarchived: %s", row.incident_id, reason)
        return True

    async def _renew(self, row_id: int, token: str) -> None:
        async with self.deps.db.session() as session:
            await service.renew(session, row_id=row_id, token=token, now=self.deps.clock.now())

    async def _archive(self, row: ChannelArchive, token: str, *, now: datetime) -> int:
        row_id = row.id or 0
        async with self.deps.db.session() as session:
            incident = await session.get(Incident, row.incident_id, populate_existing=True)
            file_id = await _postmortem_file(session, incident_id=row.incident_id)
        assert incident is not None
        if not row.goodbye_posted:
            link = await self.chat.file_link(file_id=file_id) if file_id else None
            resolved_for = now - (incident.resolved_at or now)
            goodbye = Goodbye(ref=incident.ref, title=incident.title, resolved_for=resolved_for, postmortem_url=link)
            retry = row.attempts > 1  # an earlier claim may have posted it, then crashed before recording it
            since = incident.resolved_at if retry else None
            await self.chat.say_goodbye(channel_id=row.channel_id, goodbye=goodbye, maybe_posted_since=since)
            async with self.deps.db.session() as session:
                await service.said_goodbye(session, row_id=row_id, token=token)
        await self.chat.archive(channel_id=row.channel_id)
        async with self.deps.db.session() as session:
            await service.finish(session, row_id=row_id, token=token, now=self.deps.clock.now())
            await timeline.record(
                session,
                incident_id=row.incident_id,
                at=self.deps.clock.now(),
                text="incident channel archived",
                payload=events.Setup(step="archive", channel_id=row.channel_id),
            )
        log.info("archived the channel of %s", incident.ref)
        return 1

    async def _failed(self, row: ChannelArchive, token: str, exc: Exception) -> int:
        """Slack's refusals by their code; any other failure by its type, retried and given up the same way
        (left to the lease, it was claimed again every sweep and never given up)."""
        now = self.deps.clock.now()
        by_slack = isinstance(exc, ChatError)
        code = (exc.code or "") if isinstance(exc, ChatError) else type(exc).__name__
        error = str(exc) if by_slack else f"{code}: {exc}"
        async with self.deps.db.session() as session:
            incident = await session.get(Incident, row.incident_id, populate_existing=True)
            if incident is None:
                raise RuntimeError(f"archive timer {row.id}: its incident is gone") from exc
            if by_slack and _hidden(code, incident):
                code = giveup.HIDDEN
            if by_slack and code in DONE_ALREADY:
                await service.finish(session, row_id=row.id or 0, token=token, now=now)
                return 0
            never = by_slack and (code in NEVER or code == giveup.HIDDEN)
            give_up = never or row.attempts >= MAX_ATTEMPTS
            retry_at = None if give_up else now + retry_delay(row.attempts)
            await service.finish(session, row_id=row.id or 0, token=token, now=now, error=error, retry_at=retry_at)
        (log.error if give_up else log.warning)(
            "archiving INC-%s's channel failed: %s", row.incident_id, error, exc_info=None if by_slack else exc
        )
        if give_up:
            await giveup.report(self.deps, self.chat, row=row, incident=incident, code=code, by_slack=by_slack)
        return 0

    # --- waking -------------------------------------------------------------------------------

    async def recover(self) -> int:
        """Plan the timers a crash between a resolve and its planning lost (recent resolutions only:
        turning archiving on does not sweep away the channels of incidents resolved long ago)."""
        if self.after is None:
            return 0
        since = self.deps.clock.now() - self.after - RECOVER_WINDOW
        async with self.deps.db.session() as session:
            missing = await service.unplanned(session, resolved_since=since)
            for incident_id, channel_id, resolved_at in missing:
                await service.plan(
                    session,
                    incident_id=incident_id,
                    channel_id=channel_id,
                    due_at=resolved_at + self.after,
                    now=self.deps.clock.now(),
                )
        if missing:
            log.warning("planned archiving for %d resolved incident(s) that had no timer", len(missing))
        return len(missing)

    async def sweep(self) -> int:
        """Every minute (and at start): plan the timers a planning lost, then archive what is due.

        A planning is lost to a crash between a resolve and it, and also to a database blip in it: it runs
        in a task of its own after the resolve, which nothing retries.
        """
        try:
            await self.recover()
        except Exception:
            log.exception("recovering archive timers failed; the sweep still runs the planned ones")
        return await self.run_due()

    async def start(self) -> None:
        self._gate.open()
        if self._scheduler is None:
            self._scheduler = AsyncIOScheduler(timezone=UTC)
            self._scheduler.add_job(
                self.sweep, "interval", seconds=SWEEP_EVERY.total_seconds(), id="archive-sweep", coalesce=True
            )
            self._scheduler.start()
        self.deps.background.spawn(self.sweep(), "archive channels that fell due while the bot was down")

    async def stop(self) -> None:
        await self._gate.close()  # a run in progress is archived and recorded first
        if self._scheduler is not None and self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        self._scheduler = None

    def wake_at(self, when: datetime) -> None:
        if self._scheduler is None or not self._scheduler.running:
            return
        delay = max(when - self.deps.clock.now(), timedelta(milliseconds=200))
        self._scheduler.add_job(
            self.run_due,
            "date",
            run_date=datetime.now(UTC) + delay,
            id="archive-wake",
            replace_existing=True,
            coalesce=True,
            misfire_grace_time=None,
        )

    async def _rearm(self) -> None:
        async with self.deps.db.session() as session:
            due = await service.next_due(session)
        if due is not None:
            self.wake_at(due)


# The claim's lease is renewed this often (seconds) while the archive runs: Slack slower than `service.LEASE`
# (rate limits, retries) would let another replica or the next sweep take the row over, look for the last
# message before this one's post landed, and post it a second time.
RENEW_EVERY = renew_every(service.LEASE)


def _hidden(code: str, incident: Incident) -> bool:
    """A private channel Slack says is not found: the bot was removed from it (or it was deleted).
    Unlike a public one, it cannot be joined again, and it may well still be there, unarchived."""
    return code == "channel_not_found" and incident.private


async def _postmortem_file(session: AsyncSession, *, incident_id: int) -> str | None:
    """The last shared post-mortem draft's file id, from the timeline."""
    result = await session.exec(
        select(TimelineEvent)
        .where(col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.kind) == Kind.POSTMORTEM)
        .order_by(col(TimelineEvent.at).desc(), col(TimelineEvent.id).desc())
    )
    for event in result.all():
        file_id = events.read_as(event, events.PostmortemEvent).file_id
        if file_id:
            return file_id
    return None
