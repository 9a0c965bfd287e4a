"""Alerts after they are stored: declaring, showing them in Slack, retrying when Slack is down.

The webhook handler only writes the database (`AlertProcessor.ingest`) and answers; the Slack
work runs in a tracked task (`spawn`), so shutdown waits for it. When Slack fails, the group stays
pending (`synced_revision < revision`) and the retry loop tries again with back-off; at start-up
every pending group is retried, so an alert the bot answered 2xx for always reaches Slack.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import timedelta

from bot.alerts import claims, declaring, leases, offers, rules, service
from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.payloads import Notification, storable
from bot.alerts.ports import AlertChat, AlertView
from bot.alerts.state import source_name
from bot.alerts.views import alert_line, build_view, incident_description
from bot.deps import Deps
from bot.exceptions import BotError, ChatError, InvalidState, MessageGone, unanswered
from bot.incidents import access
from bot.incidents import flows as incident_flows
from bot.incidents.flows import Outcome
from bot.incidents.models import Incident
from bot.signals import IncidentEvent

log = logging.getLogger(__name__)

RETRY_INTERVAL = 10.0  # seconds between sweeps for pending groups
LEASE = timedelta(minutes=2)  # a sync that holds a group longer is presumed dead
MAX_BACKOFF = 300.0
SHUTDOWN_WAIT = 20.0


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(MAX_BACKOFF, 5.0 * (2 ** min(attempts, 10))))


class AlertProcessor:
    """Owns the background work of the alerts domain (one per app)."""

    def __init__(
        self,
        deps: Deps,
        *,
        retry_interval: float = RETRY_INTERVAL,
        lease: timedelta = LEASE,
        declare_stale: timedelta = declaring.DECLARE_STALE,
    ) -> None:
        self.deps = deps
        self.retry_interval = retry_interval
        self.lease = lease
        self.declare_stale = declare_stale
        self._loop: asyncio.Task[None] | None = None
        self._stopping = False
        self.first_sweep = asyncio.Event()

    # --- intake ----------------------------------------------------------------------------------

    async def ingest(self, note: Notification) -> service.IngestResult:
        note = storable(note)
        proposal = rules.propose(note, config=self.deps.settings.config, registry=self.deps.playbooks)
        async with self.deps.db.session() as session:
            result = await service.ingest(
                session,
                note=note,
                proposal=proposal,
                source_name=self.source_name(note.source),
                now=self.deps.clock.now(),
            )
        self.deps.metrics.alerts_received.labels(source=note.source, status=note.status).inc()
        log.info(
            "alert %s group %s stored (revision %s)",
            note.status,
            result.group_id,
            result.revision,
            extra={"alert_source": note.source, "alert_group": result.group_id, "alertname": note.alertname},
        )
        return result

    def source_name(self, source: str) -> str:
        """What this app calls the source (its own settings: another app in the process may differ)."""
        return source_name(source, sources=self.deps.settings.config.alerts.sources)

    def spawn(self, group_id: int) -> None:
        """Show the group in Slack in the background; tracked so shutdown waits for it."""
        self.deps.background.spawn(self.sync(group_id), f"show alert group {group_id}")

    # --- lifecycle -------------------------------------------------------------------------------

    async def start(self) -> None:
        self._stopping = False
        self._loop = asyncio.get_running_loop().create_task(self._retry_loop())

    async def stop(self) -> None:
        self._stopping = True
        await self.stop_retry_loop()
        await self.idle(timeout=SHUTDOWN_WAIT)

    async def stop_retry_loop(self) -> None:
        if self._loop is not None:
            self._loop.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._loop
            self._loop = None

    async def idle(self, timeout: float = 15.0) -> None:  # noqa: ASYNC109 - a deadline over many tasks
        """Wait for the Slack work started so far (shutdown, tests); what is left stays pending in the database."""
        await self.deps.background.drain(within=timeout)

    async def _retry_loop(self) -> None:
        first = True
        while not self._stopping:
            try:
                # The first sweep (at start-up) retries everything pending, back-off or not.
                count = await self.sweep(due_only=not first)
                if count and first:
                    log.info("retried %d alert group(s) left pending", count)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("alert retry sweep failed")
            if first:
                first = False
                self.first_sweep.set()
            await asyncio.sleep(self.retry_interval)

    async def sweep(self, *, due_only: bool = True) -> int:
        """Retry every pending group that is due (and recover declares a dead process left claimed)."""
        now = self.deps.clock.now()
        await declaring.recover_declares(self.deps, now=now, stale_after=self.declare_stale)
        async with self.deps.db.session() as session:
            ids = await leases.pending_ids(session, now=now, stale_before=now - self.lease, due_only=due_only)
        for group_id in ids:
            if self._stopping:
                break
            try:
                await self.sync(group_id)
            except Exception:
                log.exception("alert group %s: retry crashed", group_id)
        return len(ids)

    async def pending_count(self) -> int:
        async with self.deps.db.session() as session:
            return await leases.pending_count(session)

    # --- one group -------------------------------------------------------------------------------

    async def sync(self, group_id: int) -> bool:
        """Bring Slack in line with the group; False when it failed (the group stays pending)."""
        token = secrets.token_hex(8)
        for _ in range(5):
            now = self.deps.clock.now()
            async with self.deps.db.session() as session:
                claim = await leases.claim_sync(
                    session, group_id=group_id, token=token, now=now, stale_before=now - self.lease
                )
            if claim is None:
                return True  # another task holds it; it re-checks for newer revisions before letting go
            try:
                revision = await self._sync_once(group_id, token, after_crash=claim == leases.Claim.TAKEN_OVER)
                async with self.deps.db.session() as session:
                    if await leases.finish_sync(session, group_id=group_id, token=token, revision=revision):
                        return True
            except Exception as exc:
                await self._failed(group_id, token, exc)
                return False
        return True

    async def _failed(self, group_id: int, token: str, exc: BaseException) -> None:
        reason = str(exc) if isinstance(exc, BotError) else f"{type(exc).__name__}: {exc}"
        if isinstance(exc, BotError):
            log.warning("alert group %s is pending: %s", group_id, reason)
        else:
            log.error("alert group %s is pending after an unexpected error", group_id, exc_info=exc)
        async with self.deps.db.session() as session:
            group = await service.get_group(session, group_id=group_id)
            await leases.fail_sync(
                session,
                group_id=group_id,
                token=token,
                error=reason,
                next_attempt_at=self.deps.clock.now() + backoff(group.attempts),
            )

    async def _snapshot(self, group_id: int) -> tuple[AlertGroup, list[AlertInstance], Incident | None]:
        async with self.deps.db.session() as session:
            group = await service.get_group(session, group_id=group_id)
            alerts = await service.instances(session, group_id=group_id)
            incident = await session.get(Incident, group.incident_id) if group.incident_id else None
        return group, alerts, incident

    async def _sync_once(self, group_id: int, token: str, *, after_crash: bool = False) -> int:
        group, alerts, incident = await self._linked_snapshot(group_id)
        revision = group.revision
        incident = await self._finish_setup(group, incident)
        view = build_view(group, alerts, incident, source_name=self.source_name(group.source))
        chat = self._chat()
        # A sync that died or failed may have posted the card without saving its ts: look for it first.
        look = after_crash or group.attempts > 0
        card_failed: ChatError | None = None
        try:
            await self._show_in_alerts_channel(chat, group_id=group_id, group=group, view=view, token=token, look=look)
        except ChatError as exc:  # the card is retried (the group stays pending); the responders still hear it
            card_failed = exc
        if incident is not None and incident.channel_id:
            await self._tell_incident(chat, group_id=group_id, group=group, alerts=alerts, incident=incident, view=view)
        if card_failed is not None:
            raise card_failed
        return revision

    def _chat(self) -> AlertChat:
        chat = self.deps.alert_chat
        if chat is None:
            raise ChatError("no chat adapter is set up for alerts", step="alert chat", code="not_configured")
        return chat

    async def _linked_snapshot(self, group_id: int) -> tuple[AlertGroup, list[AlertInstance], Incident | None]:
        """The group as Slack should show it: declared or linked first when its rule or a fingerprint says so."""
        group, alerts, incident = await self._snapshot(group_id)
        if group.incident_id is None and group.status == "firing":
            if group.declare_state == DeclareState.WANTED:
                await declaring.auto_declare(self.deps, group, alerts)
                return await self._snapshot(group_id)
            if group.declare_state == DeclareState.NONE and await declaring.link_by_fingerprint(
                self.deps, group, alerts
            ):
                return await self._snapshot(group_id)
        return group, alerts, incident

    async def _finish_setup(self, group: AlertGroup, incident: Incident | None) -> Incident | None:
        """An incident whose channel setup failed is set up again; this sync fails while that still fails."""
        if incident is None or not incident.is_open or not incident.setup_error:
            return incident
        outcome = await incident_flows.finish_setup(self.deps, incident_id=incident.id or 0, actor=group.source)
        incident = outcome.incident
        if outcome.problems:
            raise ChatError(f"{incident.ref} setup: {'; '.join(outcome.problems)}", step="incident setup")
        return incident

    async def _show_in_alerts_channel(
        self, chat: AlertChat, *, group_id: int, group: AlertGroup, view: AlertView, token: str, look: bool
    ) -> None:
        channel = self.deps.settings.config.channels.alerts
        if not channel:
            return
        if not group.message_ts and look:
            try:
                found = await chat.find_alert(channel=channel, group_id=group_id, since=group.first_seen_at)
            except ChatError as exc:  # not fatal: posting again beats showing nothing
                log.warning("alert group %s: could not look for an earlier card: %s", group_id, exc)
                found = None
            if found is not None:
                log.warning("alert group %s: reusing the card posted before a crash", group_id)
                group.channel_id, group.message_ts = found
                async with self.deps.db.session() as session:
                    await leases.save_message(
                        session, group_id=group_id, token=token, channel_id=found[0], message_ts=found[1]
                    )
        if group.message_ts:
            try:
                await chat.update_alert(channel=group.channel_id or channel, ts=group.message_ts, view=view)
                return
            except MessageGone:  # someone deleted the card: post it again rather than fail every sync
                log.warning("alert group %s: its card was deleted in Slack; posting it again", group_id)
        channel_id, ts = await chat.post_alert(channel=channel, view=view)
        async with self.deps.db.session() as session:
            await leases.save_message(session, group_id=group_id, token=token, channel_id=channel_id, message_ts=ts)

    async def _tell_incident(
        self,
        chat: AlertChat,
        *,
        group_id: int,
        group: AlertGroup,
        alerts: list[AlertInstance],
        incident: Incident,
        view: AlertView,
    ) -> None:
        """New firing alerts, and an offer to resolve once the alert cleared, in the incident's channel.
        Only once every alert group of the incident has cleared: while another still fires, the channel
        hears which, and the offer comes with the last group to clear."""
        fresh = [alert_line(a, group.common_labels) for a in alerts if a.status == "firing" and not a.noticed]
        cleared = group.resolve_offer_pending and incident.is_open
        if not (fresh or cleared):
            return
        told = offers.Cleared()
        if cleared:  # read now, in a session of its own: a sync may hold older copies
            now = self.deps.clock.now()
            async with self.deps.db.session() as session:
                linked = await claims.groups_for_incident(session, incident_id=incident.id or 0)
                told = await offers.decide(session, group=group, linked=linked, now=now, lease_from=now - self.lease)
        told = await offers.posted_before(chat, self.deps.db, incident=incident, told=told, group_id=group_id)
        try:
            await chat.notify_incident(
                incident=incident,
                view=view,
                new_alerts=fresh,
                offer_resolve=told.offer,
                still_firing=told.still_firing,
                offer_through=told.through,
                also_cleared=told.also_cleared,
            )
        except BaseException as exc:
            # Given back only when Slack's own answer says nothing was posted; after a cut answer, a timeout
            # or a cancel the claim is kept, so whoever takes it next looks in the channel first.
            if told.offer and isinstance(exc, ChatError) and not unanswered(exc.code):
                async with self.deps.db.session() as session:
                    await offers.give_back(session, incident_id=incident.id or 0, group_id=group_id)
            raise
        async with self.deps.db.session() as session:
            if told.offer:  # before the flags: a crash between them finds the offer made, not owed
                await offers.finish(session, incident_id=incident.id or 0, through=told.through, group_id=group_id)
            await leases.mark_noticed(session, group_id=group_id, fingerprints=[a.fingerprint for a in fresh])
            for done in (g for g in told.covered if g.resolve_offer_pending):
                await leases.clear_resolve_offer(session, group_id=done.id or 0, resolved_at=done.resolved_at)

    # --- reacting to incidents ------------------------------------------------------------------

    async def on_incident_changed(self, event: IncidentEvent) -> None:
        """A linked incident changed (resolved): refresh its alert messages, in the background."""
        async with self.deps.db.session() as session:
            group_ids = await claims.bump_for_incident(session, incident_id=event.incident_id)
        for group_id in group_ids:
            self.spawn(group_id)


# --- the buttons -----------------------------------------------------------------------------------


def processor_of(deps: Deps) -> AlertProcessor:
    if deps.alerts is None:
        raise RuntimeError("the alerts domain is not set up (bot.alerts.setup has not run)")
    return deps.alerts


async def resolve_from_alert(deps: Deps, *, incident_id: int, actor: str) -> Outcome:
    """The Resolve button on an 'alert cleared' message, by someone who can see the incident."""
    incident = await access.find(deps, number=incident_id, person=actor)
    async with deps.db.session() as session:
        if not incident.is_open:
            raise InvalidState(f"{incident.ref} is resolved already.")
        groups = await claims.groups_for_incident(session, incident_id=incident_id)
    names = sorted({g.title.split(":")[0] for g in groups if g.title}) or ["the alert"]
    summary = f"Resolved after the alert cleared ({', '.join(names[:3])})."
    return await incident_flows.resolve(deps, incident_id=incident_id, summary=summary, actor=actor)


async def proposal_modal_values(deps: Deps, *, group_id: int) -> tuple[AlertGroup, str]:
    """The group the Declare form is filled from, and the incident description it proposes."""
    async with deps.db.session() as session:
        group = await service.get_group(session, group_id=group_id)
        alerts = await service.instances(session, group_id=group_id)
    return group, incident_description(group, alerts, source_name=processor_of(deps).source_name(group.source))
