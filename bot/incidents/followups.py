"""Follow-ups (action items) marked done or open again, each change on the timeline with who made it.

The item is re-read by id *and* incident, so an id from a form cannot touch another incident's item.
Issue trackers (a later change) hang their links off the same rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import NotFound
from bot.incidents.models import ActionItem, Incident
from bot.timeline import events
from bot.timeline import service as timeline


async def set_done(
    session: AsyncSession, *, incident: Incident, item_id: int, done: bool, actor: str, now: datetime, via: str
) -> bool:
    """Mark one follow-up done (or open again); False when it already was."""
    assert incident.id is not None
    item = (
        await session.exec(select(ActionItem).where(ActionItem.id == item_id, ActionItem.incident_id == incident.id))
    ).first()
    if item is None:
        raise NotFound(f"{incident.ref} has no follow-up #{item_id}.")
    if bool(item.done) == done:
        return False
    item.done = done
    item.issue_closed_at = None  # a person's word: the tracker no longer reopens (or re-checks) it
    session.add(item)
    await timeline.add(
        session,
        incident_id=incident.id,
        at=now,
        actor=actor,
        text=f"Follow-up {'done' if done else 'reopened'}: {item.text}",
        payload=events.FollowupStatus(item_id=item_id, done=done, via=via),
    )
    await session.commit()
    return True
