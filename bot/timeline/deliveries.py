"""Each Slack delivery acts once: claims by a unique key, written in the transaction of what they guard.

Events are claimed by their `event_id` (Slack keeps it across retries), other requests by their
signature (bot/slack/listeners/replay.py says why). Both are pruned after Slack's retry window.
An alert sender's delivery that must act once (`ALERT_CLAIM`, bot/alerts/service.py) is kept longer
(`ALERT_CLAIM_RETENTION`), and pruned by the same pruner.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Table, delete, insert
from sqlalchemy.exc import IntegrityError
from sqlmodel import col
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.timeline.models import ProcessedEvent, ProcessedRequest

_PROCESSED_EVENTS = ProcessedEvent.metadata.tables["processed_events"]
_PROCESSED_REQUESTS = ProcessedRequest.metadata.tables["processed_requests"]
ALERT_CLAIM = "alert:"  # the prefix of an alert delivery's claim: pruned by its own retention, not Slack's
# How long such a claim is kept: a replay after that acts as a new delivery.
ALERT_CLAIM_RETENTION = timedelta(days=30)


@dataclass(frozen=True)
class Delivery:
    """A Slack event (its `event_id`, kept across Slack's retries) claimed with what it writes.

    Claimed in the same transaction as the write: when the write fails, so does the claim, and
    Slack's retry of the event is let in; of two deliveries at once, the unique key lets one through.
    """

    event_id: str
    received_at: datetime


async def claim(session: AsyncSession, delivery: Delivery | None) -> bool:
    """Claim a delivery in the caller's transaction, committed with its write; False (rolled back) when taken.

    On PostgreSQL a concurrent claim of the same id waits here for the first one's outcome.
    """
    if delivery is None:
        return True
    return await insert_or_roll_back(
        session, _PROCESSED_EVENTS, {"event_id": delivery.event_id, "received_at": delivery.received_at}
    )


async def insert_once(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """True for the first insert of this key; a race between replicas is settled by a unique key.

    A Core INSERT: every request and every channel message passes here, and the ORM's object and
    flush would double its cost.
    """
    return await insert_or_roll_back(session, table, values) and await commit_once(session)


async def insert_or_roll_back(session: AsyncSession, table: Table, values: dict[str, Any]) -> bool:
    """The INSERT in the caller's transaction; False, and that transaction rolled back, when the key is taken."""
    try:
        await session.exec(insert(table), params=values)  # the key is checked here, not at the commit
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def commit_once(session: AsyncSession) -> bool:
    """Commit a row whose key may be taken already (a redelivery, another replica): False then."""
    try:
        await session.commit()
    except IntegrityError:
        await session.rollback()
        return False
    return True


async def first_delivery(session: AsyncSession, *, event_id: str, at: datetime) -> bool:
    """True the first time a Slack `event_id` is seen."""
    return await insert_once(session, _PROCESSED_EVENTS, {"event_id": event_id, "received_at": at})


async def first_request(session: AsyncSession, *, signature: str, at: datetime) -> bool:
    """True the first time a request signature is seen."""
    return await insert_once(session, _PROCESSED_REQUESTS, {"signature": signature, "received_at": at})


async def claim_request(session: AsyncSession, *, signature: str, at: datetime) -> bool:
    """`first_request` in the caller's transaction, which commits it; False (and rolled back) when seen."""
    return await insert_or_roll_back(session, _PROCESSED_REQUESTS, {"signature": signature, "received_at": at})


async def prune_processed(
    session: AsyncSession, *, events_before: datetime, requests_before: datetime, alerts_before: datetime | None = None
) -> None:
    """Claims past their retention: Slack's events' and requests', and alert deliveries' (`ALERT_CLAIM`) only
    before `alerts_before` (kept when None)."""
    await session.exec(delete(ProcessedEvent).where(col(ProcessedEvent.received_at) < events_before))
    alert = col(ProcessedRequest.signature).startswith(ALERT_CLAIM)
    await session.exec(delete(ProcessedRequest).where(col(ProcessedRequest.received_at) < requests_before, ~alert))
    if alerts_before is not None:
        await session.exec(delete(ProcessedRequest).where(col(ProcessedRequest.received_at) < alerts_before, alert))
    await session.commit()


async def claim_alert(session: AsyncSession, *, key: str, at: datetime) -> bool:
    """An alert delivery's claim in the caller's transaction; False (rolled back) when it was claimed before."""
    return await insert_or_roll_back(session, _PROCESSED_REQUESTS, {"signature": ALERT_CLAIM + key, "received_at": at})
