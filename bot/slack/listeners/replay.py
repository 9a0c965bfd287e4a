"""Each Slack delivery acts once: retried events and replayed requests are dropped before any listener.

Bolt has verified the signature before this runs.
- Events: only those in an incident channel write anything, so the incident is looked up once
  here (and put in the context as `incident_id` for the listeners) and only those are claimed.
  Their `event_id` is kept by Slack across retries. Reading the incident before the ack means that
  when the database is unreachable Slack gets a 503 and retries later instead of losing the message.
  Reactions and pins are claimed here; a message event is claimed by its listener in the same
  transaction as the message (`timeline.Delivery`), so a store that fails after the ack (a database
  blip) claims nothing and Slack's retry of the event stores it.
- Slash commands and interactions have no id. A signature covers the timestamp and the body, so a
  second request with the same signature (a proxy retry, a replayed capture) is the same delivery.
Claims are pruned after Slack's retry window; Bolt refuses requests older than 5 minutes anyway.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from sqlalchemy.exc import SQLAlchemyError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deps import Deps
from bot.incidents import service as incidents
from bot.slack.listeners.events.timeline import DELIVERY, event_channel
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

EVENT_RETENTION = timedelta(hours=2)  # Slack retries for about an hour
REQUEST_RETENTION = timedelta(minutes=10)
PRUNE_EVERY = 500


UNAVAILABLE = BoltResponse(status=503, body="database unavailable; retry later")
# What a delivery is claimed by: the timeline's first_delivery (events) or first_request (the rest).
Claim = Callable[[AsyncSession], Awaitable[bool]]


def register(app: AsyncApp, deps: Deps) -> None:
    seen = 0

    @app.middleware
    async def drop_replays(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        nonlocal seen
        now = deps.clock.now()
        is_event = req.body.get("type") == "event_callback"
        claim = await _event_claim(deps, req, now=now) if is_event else _request_claim(req, now=now)
        if isinstance(claim, BoltResponse):
            return claim
        if claim is None:
            return await next()
        try:
            async with deps.db.session() as session:
                first = await claim(session)
                seen += 1
                if seen % PRUNE_EVERY == 0:
                    await timeline.prune_processed(
                        session, events_before=now - EVENT_RETENTION, requests_before=now - REQUEST_RETENTION
                    )
        except (SQLAlchemyError, OSError) as exc:
            log.warning("database unavailable while claiming a Slack delivery: %s", type(exc).__name__)
            if is_event:
                return UNAVAILABLE
            return await next()  # a command still gets its (error) reply
        if not first:
            return BoltResponse(status=200, body="")
        return await next()


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
    if incident is None:
        return None
    req.context["incident_id"] = incident.id
    if not event_id:
        return None
    if (req.body.get("event") or {}).get("type") == "message":
        # Claimed by the listener, in the transaction that stores the message (see its docstring).
        req.context[DELIVERY] = timeline.Delivery(event_id=event_id, received_at=now)
        return _claimed_by_listener
    return lambda session: timeline.first_delivery(session, event_id=event_id, at=now)


async def _claimed_by_listener(session: AsyncSession) -> bool:
    """Let the message through; counted like a claim, so the pruning still comes round."""
    return True


def _request_claim(req: AsyncBoltRequest, *, now: datetime) -> Claim | None:
    """Commands and clicks are claimed by their signature (none in Socket Mode, where Slack signs nothing)."""
    signature = (req.headers.get("x-slack-signature") or [""])[0]
    if not signature or req.mode == "socket_mode":
        return None
    key = hashlib.sha256(signature.encode()).hexdigest()[:64]
    return lambda session: timeline.first_request(session, signature=key, at=now)
