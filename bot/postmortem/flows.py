"""Publishing the post-mortem (database + chat) and answering stats; flows take `deps`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass

from bot.deps import Deps
from bot.exceptions import BotError, InvalidState
from bot.followups import flows as followups
from bot.incidents.models import Incident
from bot.postmortem import service
from bot.postmortem import stats as stats_service
from bot.postmortem.data import PostmortemData
from bot.postmortem.ports import PostmortemChat
from bot.postmortem.text import USER_ID
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind

log = logging.getLogger(__name__)

MAX_NAME_LOOKUPS = 50
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)")


@dataclass(frozen=True)
class Published:
    ref: str
    channel_id: str
    file_id: str
    filename: str
    events: int


def people(data: PostmortemData) -> list[str]:
    """The Slack users the document names, most prominent first (the name lookups are capped)."""
    seen: dict[str, None] = {}

    def add(values: Iterable[str | None]) -> None:
        for value in values:
            if value and USER_ID.fullmatch(value):
                seen.setdefault(value, None)

    add([data.commander, data.comms, data.scribe, data.declared_by, data.acknowledged.by, data.resolved_by])
    add(r.user for r in data.responders)
    for escalation in data.escalations:
        add(escalation.who)
    add(i.owner for i in data.action_items)
    add(i.created_by for i in data.action_items)
    for event in data.events:
        if len(seen) >= MAX_NAME_LOOKUPS:
            break
        add([event.actor])
        if "<@" in event.summary:
            add(_MENTION.findall(event.summary))
    return list(seen)[:MAX_NAME_LOOKUPS]


def _chat(deps: Deps) -> PostmortemChat:
    if deps.postmortem_chat is None:
        raise RuntimeError("no chat adapter is set up for the post-mortem")
    return deps.postmortem_chat


async def publish(deps: Deps, *, incident_id: int, actor: str | None, trigger: str) -> Published:
    """Build, render and share the draft in the incident channel, and put that on the timeline."""
    return await _share(deps, await _build(deps, incident_id=incident_id), actor=actor, trigger=trigger)


async def _build(deps: Deps, *, incident_id: int) -> PostmortemData:
    await followups.refresh_quietly(deps, incident_id=incident_id)  # a closed issue shows its follow-up done
    async with deps.db.session() as session:
        return await service.build(session, incident_id=incident_id, now=deps.clock.now())


def _shared_on_resolve(data: PostmortemData) -> bool:
    """The resolve's draft is on the timeline already: IncidentResolved came again (after a crash)."""
    return any(e.kind == Kind.POSTMORTEM and e.data.get("trigger") == "resolve" for e in data.events)


async def _share(deps: Deps, data: PostmortemData, *, actor: str | None, trigger: str) -> Published:
    chat = _chat(deps)
    incident_id = data.number
    if not data.channel_id:
        raise InvalidState(
            f"{data.ref} has no channel to share the post-mortem in. "
            f"On the server, `python -m bot postmortem {data.ref}` prints it."
        )
    data.user_names = await chat.user_names(user_ids=people(data))
    # Rendering a big timeline takes a few hundred ms of CPU: keep it off the event loop.
    document = await asyncio.to_thread(
        service.render, data, fmt="markdown", templates_dir=deps.settings.config.postmortem.templates_dir
    )
    content = document.encode("utf-8")
    filename = service.filename(data, fmt="markdown")
    file_id = await chat.upload(data=data, filename=filename, content=content, trigger=trigger)
    await timeline.record_now(
        deps,
        incident_id=incident_id,
        actor=actor,
        text=f"Post-mortem draft shared: {filename}",
        payload=events.PostmortemEvent(
            file_id=file_id,
            filename=filename,
            format="markdown",
            bytes=len(content),
            trigger=trigger,
            events=len(data.events),
            finished=False,  # a draft; the escalation reminder waits for a finished one
        ),
    )
    return Published(
        ref=data.ref, channel_id=data.channel_id, file_id=file_id, filename=filename, events=len(data.events)
    )


async def publish_after_resolve(deps: Deps, *, incident_id: int, actor: str | None) -> Published | None:
    """The automatic draft on resolve: a failure is reported in the channel and on the timeline, never raised."""
    try:
        data = await _build(deps, incident_id=incident_id)
        if _shared_on_resolve(data):
            log.info("%s: the draft was shared on resolve already", data.ref)
            return None
        return await _share(deps, data, actor=actor, trigger="resolve")
    except BotError as exc:
        log.warning("post-mortem for INC-%s not shared: %s", incident_id, exc)
        await _report_failure(deps, incident_id=incident_id, error=str(exc))
    except Exception as exc:
        log.exception("post-mortem for INC-%s failed", incident_id)
        await _report_failure(deps, incident_id=incident_id, error=f"internal error ({type(exc).__name__})")
    return None


async def _report_failure(deps: Deps, *, incident_id: int, error: str) -> None:
    try:
        async with deps.db.session() as session:
            await timeline.record(
                session,
                incident_id=incident_id,
                at=deps.clock.now(),
                text=f"Post-mortem draft not shared: {error}",
                payload=events.ChatError(step="postmortem"),
            )
            incident = await session.get(Incident, incident_id)
        if incident is not None and incident.channel_id:
            await _chat(deps).report_failure(channel_id=incident.channel_id, ref=incident.ref, error=error)
    except Exception:
        log.exception("could not report the post-mortem failure for INC-%s", incident_id)


async def mark_finished(deps: Deps, *, incident_id: int, actor: str) -> None:
    """The escalation reminder stops chasing once this event exists, so only a resolved incident's
    post-mortem can be finished: marked while open, it would silence the chase before it was written."""
    async with deps.db.session() as session:
        incident = await session.get(Incident, incident_id)
        if incident is not None and incident.is_open:
            raise InvalidState(
                f"{incident.ref} is still open: its post-mortem can be finished once it is resolved "
                "(`/incident resolve [summary]`)."
            )
        await timeline.record(
            session,
            incident_id=incident_id,
            at=deps.clock.now(),
            actor=actor,
            text="post-mortem marked finished",
            payload=events.PostmortemEvent(finished=True),
        )


async def stats(deps: Deps, *, days: int) -> stats_service.Stats:
    async with deps.db.session() as session:
        return await stats_service.compute(session, now=deps.clock.now(), days=days)
