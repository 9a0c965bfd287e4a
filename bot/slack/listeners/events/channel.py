"""What a person does to the incident's channel itself: renames it, archives or unarchives it.

Slack says so with a message in the channel (subtypes below); applied before the ack with the event's
claim, as `timeline.keep_message` does for messages, so Slack's retry records it once. An archive of an
open incident's channel plans, in that transaction, a notice to the person in charge (with nobody in
charge, a public incident's announcements channel), sent after the ack (`incidents/archived_notice.py`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.deps import Deps
from bot.incidents import archived_notice, channels
from bot.incidents.grammar import clean
from bot.timeline import deliveries

RENAMED = {"channel_name", "group_name"}  # the event carries `name` and `old_name`
ARCHIVED = {"channel_archive": True, "group_archive": True, "channel_unarchive": False, "group_unarchive": False}
CHANNEL_SUBTYPES = RENAMED | set(ARCHIVED)


def message_time(ts: object, *, received_at: datetime) -> datetime:
    """When Slack says a message was posted (its `ts`); without one it can read, when the event reached
    us (the injected clock's time, as every other time the bot records)."""
    try:
        return datetime.fromtimestamp(float(str(ts)), tz=UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        return received_at


async def keep_channel_change(
    session: AsyncSession,
    *,
    event: dict[str, Any],
    incident_id: int,
    delivery: deliveries.Delivery | None,
    received_at: datetime,
) -> bool:
    """Record a rename, archive or unarchive of the incident's channel; False for a replay or another subtype."""
    subtype, channel_id = str(event.get("subtype")), str(event["channel"])
    actor, at = event.get("user"), message_time(event.get("ts"), received_at=received_at)
    if subtype in RENAMED and event.get("name"):
        return await channels.renamed(
            session,
            incident_id=incident_id,
            channel_id=channel_id,
            name=clean(str(event["name"])),
            old_name=clean(str(event.get("old_name") or "")),
            actor=actor,
            at=at,
            delivery=delivery,
        )
    if subtype in ARCHIVED:
        return await channels.archived(
            session,
            incident_id=incident_id,
            channel_id=channel_id,
            archived=ARCHIVED[subtype],
            actor=actor,
            at=at,
            now=received_at,
            delivery=delivery,
        )
    return False


async def after_channel_change(deps: Deps, event: dict[str, Any], context: dict[str, Any]) -> None:
    """After the ack of a channel change `keep_channel_change` recorded (the middleware lets only that one
    through): an archive's notice, planned with it, is sent now (the resume sweep sends it if this fails)."""
    incident_id = context.get("incident_id")
    if incident_id is None or not ARCHIVED.get(str(event.get("subtype")), False):
        return
    await archived_notice.send_due(deps, incident_id=int(incident_id))
