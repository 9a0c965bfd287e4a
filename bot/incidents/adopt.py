"""What an earlier setup run left in Slack but could not record, found and reused.

A run killed (or whose database write failed) between Slack acting and the bot saving the ID
leaves a channel, a summary or an announcement that nothing points at. Only a Retry or a resumed
setup looks for them (the declaration's own run cannot have made any): reusing beats a `-2`
channel twin, a second pinned summary, or a second announcement.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.incidents.ports import Channel
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)


async def post_once(
    deps: Deps, incident: Incident, kind: str, channel_id: str, post: Callable[[], Awaitable[str]], adopt: bool
) -> str:
    """Post the summary/announcement, unless an earlier run posted it and died before saving its ts
    (only a Retry or a resumed setup looks: the declaration's own run cannot have posted one)."""
    if adopt:
        try:
            found = await deps.incident_chat.find_own_post(channel_id=channel_id, kind=kind, incident=incident)
        except ChatError as exc:
            log.warning("could not look for %s's earlier %s: %s", incident.ref, kind, exc)
            found = None
        if found is not None:
            assert incident.id is not None
            await timeline.record_now(
                deps,
                incident_id=incident.id,
                text=f"reused the {kind} posted before the setup was interrupted",
                payload=events.Setup(step=f"adopt {kind}", channel_id=channel_id, ts=found),
            )
            return found
    return await post()


async def own_channel(deps: Deps, incident: Incident, *, name: str) -> Channel | None:
    """The channel an earlier run made under `name` but never saved (the database failed in between).

    Adopting it beats leaving it orphaned beside a `-2` twin. The lookup failing is not fatal:
    the name is then treated as someone else's, as before adoption existed.
    """
    assert incident.id is not None
    # A private incident's channel name is made from its title: the logs, read outside it, get its id only.
    shown = "its channel name" if incident.private else f"#{name}"
    try:
        channel = await deps.incident_chat.find_own_channel(name=name, created_after=incident.declared_at)
    except ChatError as exc:
        log.warning("could not check whether %s is %s's own channel: %s", shown, incident.ref, exc)
        return None
    if channel is None:
        return None
    shown = "the channel" if incident.private else f"#{channel.name}"
    log.info("adopting %s (%s) for %s", shown, channel.id, incident.ref, extra={"incident": incident.ref})
    await timeline.record_now(
        deps,
        incident_id=incident.id,
        text=f"reused #{channel.name}: Slack made it before the database failed to record it",
        payload=events.Setup(step="adopt channel", channel_id=channel.id),
    )
    return channel
