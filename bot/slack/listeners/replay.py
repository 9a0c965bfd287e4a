"""Each Slack delivery acts once: retried events and replayed requests are dropped before any listener.

Bolt has verified the signature before this runs.
- Events: only those in an incident channel write anything, so the incident is looked up once
  here (and put in the context as `incident_id` for the listeners) and only those are claimed.
  Their `event_id` is kept by Slack across retries. A message is stored here, and a 📌 or a pin
  marks its message key here, or its removal unmarks it, before the ack, with the claim in the
  same transaction (`keep_message` and `keep_key_mark` in `events/timeline.py` say why): Slack
  never retries an event it got a 200 for. Other events in the channel are claimed here.
- A database that is down (`db.DATABASE_DOWN`) answers an event 503: Slack retries it later (at
  once, after 1 and after 5 minutes) instead of the bot losing it. Any other failure would fail
  the same way again: it is logged and answered 200, so nothing loops.
- Slash commands and interactions have no id. A signature covers the timestamp and the body, so a
  second request with the same signature (a proxy retry, a replayed capture) is the same delivery.
  `/incident declare …` writes its incident at once: its claim is left to that transaction
  (`CarriedClaim`, one transaction less on the busiest path), and a replay rolls the whole
  declaration back. The listener claims it alone when the text turns out to be no declaration.
Claims are pruned after Slack's retry window; Bolt refuses requests older than 5 minutes anyway.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.db import DATABASE_DOWN
from bot.deps import Deps
from bot.incidents import service as incidents
from bot.slack.listeners.events.timeline import (
    event_channel,
    keep_key_mark,
    keep_message,
    key_marker,
    with_remaining,
)
from bot.timeline import deliveries

log = logging.getLogger(__name__)

EVENT_RETENTION = timedelta(hours=2)  # Slack retries for about an hour
REQUEST_RETENTION = timedelta(minutes=10)
PRUNE_EVERY = 500


# Someone joined or left the channel: who may see a private incident changed now, not within the cache's minute.
MEMBERSHIP_SUBTYPES = {"channel_join", "channel_leave", "group_join", "group_leave"}
UNAVAILABLE = BoltResponse(status=503, body="database unavailable; retry later")
ACKED = BoltResponse(status=200, body="")
# What an event is claimed by, in the transaction that writes it (see `_event_claim`).
Claim = Callable[[AsyncSession], Awaitable[bool]]


CARRIED = "carried_replay_claim"  # in a command's context: its claim, left to its own first write


class Replayed(Exception):
    """A carried claim found its request seen already: the write that carried it is rolled back."""


@dataclass(frozen=True)
class CarriedClaim:
    """A slash command's replay claim, written by the transaction of the command's first write."""

    signature: str
    at: datetime

    async def write(self, session: AsyncSession) -> None:
        """First in the caller's transaction (`incidents.service.create`'s `first`); raises Replayed, rolled back."""
        if not await deliveries.claim_request(session, signature=self.signature, at=self.at):
            raise Replayed

    async def alone(self, deps: Deps) -> bool:
        """The claim in a transaction of its own (every command and click but a declaration); False: a replay.
        A database that is down or failing lets the request through, to its own (error) reply."""
        try:
            async with deps.db.session() as session:
                return await deliveries.first_request(session, signature=self.signature, at=self.at)
        except SQLAlchemyError as exc:
            log.warning("database error while claiming a Slack request: %s", type(exc).__name__)
            return True


def carried_by_declaration(body: dict[str, Any]) -> bool:
    """`/incident declare …`: the claim goes into the declaration's INSERT (see the module's docstring)."""
    words = str(body.get("text") or "").split(maxsplit=1)
    return body.get("command") == "/incident" and bool(words) and words[0].lower() == "declare"


def register(app: AsyncApp, deps: Deps) -> None:
    pruner = Pruner(deps)

    @app.middleware
    async def drop_replays(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        now = deps.clock.now()
        if req.body.get("type") == "event_callback":
            answer, claimed = await _claim_event(deps, req, now=now)
        else:
            answer, claimed = await _claim_request(deps, req, now=now)
        if claimed:
            await pruner.claimed(now)
        return answer if answer is not None else await next()


class Pruner:
    """Every `PRUNE_EVERY` claims, those older than Slack's retry window go, in a transaction of their own."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.seen = 0

    async def claimed(self, now: datetime) -> None:
        self.seen += 1
        if self.seen % PRUNE_EVERY:
            return
        try:
            async with self.deps.db.session() as session:
                await deliveries.prune_processed(
                    session,
                    events_before=now - EVENT_RETENTION,
                    requests_before=now - REQUEST_RETENTION,
                    alerts_before=now - deliveries.ALERT_CLAIM_RETENTION,
                )
        except SQLAlchemyError as exc:  # the next round prunes them
            log.warning("could not prune the claims of old Slack deliveries: %s", type(exc).__name__)


async def _claim_request(deps: Deps, req: AsyncBoltRequest, *, now: datetime) -> tuple[BoltResponse | None, bool]:
    """A command or click, claimed by its signature (a declaration's claim is left to its own write); the
    answer when it was seen already (None: on to the listener), and whether a claim was made."""
    signature = _signature(req)
    if not signature:
        return None, False
    claim = CarriedClaim(signature=signature, at=now)
    if carried_by_declaration(req.body):
        req.context[CARRIED] = claim
        return None, True
    return (None if await claim.alone(deps) else ACKED), True


async def _claim_event(deps: Deps, req: AsyncBoltRequest, *, now: datetime) -> tuple[BoltResponse | None, bool]:
    """An event in an incident channel, claimed with its write; the answer when it must not reach the
    listeners (seen already, the database down, or lost), and whether a claim was made."""
    claim = await _event_claim(deps, req, now=now)
    if claim is None or isinstance(claim, BoltResponse):
        return claim, False
    try:
        async with deps.db.session() as session:
            first = await claim(session)
    except DATABASE_DOWN as exc:
        log.warning("database unavailable while claiming a Slack delivery: %s", type(exc).__name__)
        return UNAVAILABLE, False
    except Exception as exc:
        _log_lost(req, exc)
        return ACKED, False  # a retry would fail the same way
    return (None if first else ACKED), True


async def _event_claim(deps: Deps, req: AsyncBoltRequest, *, now: datetime) -> Claim | BoltResponse | None:
    """Events in an incident channel are claimed by their id (and carry the incident); others pass."""
    event_id = str(req.body.get("event_id") or "")
    channel_id = event_channel(req.body.get("event") or {})
    if not channel_id:
        return None
    try:
        async with deps.db.session() as session:
            incident = await incidents.by_channel(session, channel_id=channel_id)
    except (SQLAlchemyError, OSError) as exc:
        log.warning("database unavailable while reading a Slack event: %s", type(exc).__name__)
        return UNAVAILABLE
    if incident is None or incident.id is None:
        return None
    incident_id = req.context["incident_id"] = incident.id
    event = req.body.get("event") or {}
    if event.get("subtype") in MEMBERSHIP_SUBTYPES:
        deps.incident_access.forget(channel_id=channel_id)
    # Messages and key marks (and their removals) are written now, before the ack, claimed in the
    # same transaction (see `keep_message` and `keep_key_mark`).
    delivery = deliveries.Delivery(event_id=event_id, received_at=now) if event_id else None
    context = req.context
    if event.get("type") == "message":
        return lambda session: keep_message(
            session, event=event, context=context, incident_id=incident_id, delivery=delivery, received_at=now
        )
    marker = key_marker(event, context)
    if marker is not None:
        marker = await with_remaining(context.client, marker)  # Slack's read, outside the transaction
        return lambda session: keep_key_mark(
            session, marker=marker, context=context, incident_id=incident_id, delivery=delivery, received_at=now
        )
    if not event_id:
        return None
    return lambda session: deliveries.first_delivery(session, event_id=event_id, at=now)


def _log_lost(req: AsyncBoltRequest, exc: Exception) -> None:
    """An event that failed for a reason a retry would not change: said where a person will see it."""
    event = req.body.get("event") or {}
    log.error(
        "could not store Slack event %s (%s at %s in INC-%s's channel %s); not retried, it would fail again",
        req.body.get("event_id"),
        event.get("type"),
        event.get("ts") or event.get("event_ts"),
        req.context.get("incident_id"),
        event_channel(event),
        exc_info=exc,
    )


def _signature(req: AsyncBoltRequest) -> str:
    """The key a command or click is claimed by: its signature's digest ("" in Socket Mode, where Slack signs
    nothing)."""
    signature = (req.headers.get("x-slack-signature") or [""])[0]
    if not signature or req.mode == "socket_mode":
        return ""
    return hashlib.sha256(signature.encode()).hexdigest()[:64]
