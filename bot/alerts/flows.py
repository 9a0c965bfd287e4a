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
from typing import Any

from sqlmodel import col, select

from bot.alerts import rules, service
from bot.alerts.declare import declare_and_link
from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.payloads import Notification
from bot.alerts.ports import AlertChat, AlertView
from bot.alerts.views import alert_line, build_view, incident_description
from bot.config import Severity
from bot.deps import Deps
from bot.exceptions import BotError, ChatError
from bot.incidents import flows as incident_flows
from bot.incidents.models import Incident
from bot.observability import metrics_of
from bot.signals import IncidentEvent

log = logging.getLogger(__name__)

RETRY_INTERVAL = 10.0  # seconds between sweeps for pending groups
LEASE = timedelta(minutes=2)  # a sync that holds a group longer is presumed dead
DECLARE_STALE = timedelta(minutes=10)  # a declare claimed this long ago and never linked is recovered
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
        declare_stale: timedelta = DECLARE_STALE,
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
        proposal = rules.propose(note, config=self.deps.settings.config, registry=self.deps.playbooks)
        async with self.deps.db.session() as session:
            result = await service.ingest(session, note=note, proposal=proposal, now=self.deps.clock.now())
        metrics_of(self.deps).alerts_received.labels(source=note.source, status=note.status).inc()
        log.info(
            "alert %s group %s stored (revision %s)",
            note.status,
            result.group_id,
            result.revision,
            extra={"alert_source": note.source, "alert_group": result.group_id, "alertname": note.alertname},
        )
        return result

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
        await self._recover_declares(now)
        async with self.deps.db.session() as session:
            ids = await service.pending_ids(session, now=now, stale_before=now - self.lease, due_only=due_only)
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
            return await service.pending_count(session)

    # --- one group -------------------------------------------------------------------------------

    async def sync(self, group_id: int) -> bool:
        """Bring Slack in line with the group; False when it failed (the group stays pending)."""
        token = secrets.token_hex(8)
        for _ in range(5):
            now = self.deps.clock.now()
            async with self.deps.db.session() as session:
                if not await service.claim_sync(
                    session, group_id=group_id, token=token, now=now, stale_before=now - self.lease
                ):
                    return True  # another task holds it; it re-checks for newer revisions before letting go
            try:
                revision = await self._sync_once(group_id, token)
                async with self.deps.db.session() as session:
                    if await service.finish_sync(session, group_id=group_id, token=token, revision=revision):
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
            await service.fail_sync(
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

    async def _sync_once(self, group_id: int, token: str) -> int:
        group, alerts, incident = await self._declared_or_linked(group_id)
        revision = group.revision
        if incident is not None and incident.is_open and incident.setup_error:
            outcome = await incident_flows.finish_setup(self.deps, incident_id=incident.id or 0, actor=group.source)
            incident = outcome.incident
            if outcome.problems:
                raise ChatError(f"{incident.ref} setup: {'; '.join(outcome.problems)}", step="incident setup")
        view = build_view(group, alerts, incident)
        chat = self._chat()
        await self._show_in_alerts_channel(chat, group, view, token)
        if incident is not None and incident.channel_id:
            await self._tell_incident(chat, group, alerts, incident, view)
        return revision

    async def _declared_or_linked(self, group_id: int) -> tuple[AlertGroup, list[AlertInstance], Incident | None]:
        """The group as it is, after an automatic declare or a link to the same alert's open incident."""
        group, alerts, incident = await self._snapshot(group_id)
        if group.incident_id is None and group.status == "firing":
            if group.declare_state == DeclareState.WANTED:
                await self._auto_declare(group, alerts)
                return await self._snapshot(group_id)
            if group.declare_state == DeclareState.NONE and await self._link_by_fingerprint(group, alerts):
                return await self._snapshot(group_id)
        return group, alerts, incident

    async def _show_in_alerts_channel(self, chat: AlertChat, group: AlertGroup, view: AlertView, token: str) -> None:
        channel = self.deps.settings.config.channels.alerts
        if not channel:
            return
        if group.message_ts:
            await chat.update_alert(channel=group.channel_id or channel, ts=group.message_ts, view=view)
            return
        channel_id, ts = await chat.post_alert(channel=channel, view=view)
        async with self.deps.db.session() as session:
            await service.save_message(
                session, group_id=group.id or 0, token=token, channel_id=channel_id, message_ts=ts
            )

    async def _tell_incident(
        self, chat: AlertChat, group: AlertGroup, alerts: list[AlertInstance], incident: Incident, view: AlertView
    ) -> None:
        """New firing alerts, and the offer to resolve once all cleared, in the incident's channel."""
        fresh = [alert_line(a, group.common_labels) for a in alerts if a.status == "firing" and not a.noticed]
        offer = group.resolve_offer_pending and incident.is_open
        if not (fresh or offer):
            return
        await chat.notify_incident(incident=incident, view=view, new_alerts=fresh, offer_resolve=offer)
        async with self.deps.db.session() as session:
            await service.mark_noticed(session, group_id=group.id or 0, fingerprints=[a.fingerprint for a in fresh])
            if offer:
                await service.clear_resolve_offer(session, group_id=group.id or 0, resolved_at=group.resolved_at)

    def _chat(self) -> AlertChat:
        chat = self.deps.alert_chat
        if chat is None:
            raise ChatError("no chat adapter is set up for alerts", step="alert chat", code="not_configured")
        return chat

    async def _link_by_fingerprint(self, group: AlertGroup, alerts: list[AlertInstance]) -> bool:
        """The same alert (fingerprint) already has an open incident through another group: join it."""
        assert group.id is not None
        async with self.deps.db.session() as session:
            existing = await service.incident_for_fingerprints(
                session, group_id=group.id, fingerprints=[a.fingerprint for a in alerts if a.status == "firing"]
            )
        if existing is None:
            return False
        now = self.deps.clock.now()
        async with self.deps.db.session() as session:
            states = [DeclareState.NONE, DeclareState.WANTED]
            if not await service.claim_declare(session, group_id=group.id, states=states, now=now):
                return False
            await service.link_incident(
                session, group_id=group.id, incident_id=existing, how="fingerprint", actor=group.source, now=now
            )
        metrics_of(self.deps).alerts_declared.labels(source=group.source, how="fingerprint").inc()
        log.info("alert group %s joins INC-%s (same alert fingerprint)", group.id, existing)
        return True

    async def _auto_declare(self, group: AlertGroup, alerts: list[AlertInstance]) -> None:
        assert group.id is not None
        if await self._link_by_fingerprint(group, alerts):
            return
        now = self.deps.clock.now()
        async with self.deps.db.session() as session:
            if not await service.claim_declare(session, group_id=group.id, states=[DeclareState.WANTED], now=now):
                return  # a person or another replica is declaring it
        # Cancelled mid-declare (shutdown) stays claimed: the stale-declare recovery links what was made.
        outcome = await declare_and_link(
            self.deps,
            group_id=group.id,
            source=group.source,
            how="auto",
            actor=group.source,
            back_to=DeclareState.WANTED,
            title=group.title or "Alert",
            severity=Severity(group.proposed_severity) if group.proposed_severity else None,
            service_name=group.proposed_service,
            playbook_id=group.proposed_playbook,
            description=incident_description(group, alerts),
        )
        log.info("alert group %s declared %s automatically (%s)", group.id, outcome.incident.ref, group.rule)

    async def _recover_declares(self, now: Any) -> None:
        """A declare claimed but never linked: link the incident it made, or let it be declared again."""
        async with self.deps.db.session() as session:
            stale = await service.stale_declares(session, stale_before=now - self.declare_stale)
        for group_id in stale:
            async with self.deps.db.session() as session:
                group = await service.get_group(session, group_id=group_id)
                if group.declare_claimed_at is None:
                    continue
                result = await session.exec(
                    select(Incident)
                    .where(Incident.title == group.title, col(Incident.declared_at) >= group.declare_claimed_at)
                    .order_by(col(Incident.id))
                )
                made = result.first()
                if made is not None:
                    await service.link_incident(
                        session, group_id=group_id, incident_id=made.id or 0, how="auto", actor=group.source, now=now
                    )
                    log.warning(
                        "alert group %s: recovered the link to %s after an interrupted declare", group_id, made.ref
                    )
                else:
                    back = DeclareState.WANTED if group.rule else DeclareState.NONE
                    if await service.claim_declare(
                        session, group_id=group_id, states=[], now=now, stale_before=now - self.declare_stale
                    ):
                        await service.release_declare(session, group_id=group_id, back_to=back)
                        await service.bump(session, group_id=group_id)
                        log.warning("alert group %s: an interrupted declare is retried", group_id)

    # --- reacting to incidents ------------------------------------------------------------------

    async def on_incident_changed(self, event: IncidentEvent) -> None:
        """A linked incident changed (resolved): refresh its alert messages, in the background."""
        async with self.deps.db.session() as session:
            group_ids = await service.bump_for_incident(session, incident_id=event.incident_id)
        for group_id in group_ids:
            self.spawn(group_id)


def processor_of(deps: Deps) -> AlertProcessor:
    if deps.alerts is None:
        raise RuntimeError("the alerts domain is not set up (bot.alerts.setup has not run)")
    return deps.alerts
