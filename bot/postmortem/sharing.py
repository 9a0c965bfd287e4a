"""Sharing the post-mortem draft in the incident channel exactly once.

A draft's timeline line is written pending (`pending` set, text "Sharing…") before the upload, and
completed after it: shared (with the file's id), or not shared and why. A run that fails or dies between
the two leaves the line pending, and the next run, for a draft a person asks for (`share`) or the one
shared on resolve (`share_after_resolve`), looks in the channel for that file (`_found`) and records it
instead of sharing a second draft; when there is none, or Slack cannot be searched, the line is
settled (`_settle`) and a fresh draft shared, or on resolve, reported. The resolve's retry shares its
fresh draft on the earlier run's line, written pending again first: the line never reads an old outcome
while an upload is under way.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, replace
from datetime import datetime

from bot.deps import Deps
from bot.exceptions import BotError, ChatError, InvalidState, is_transient
from bot.incidents.models import Incident
from bot.postmortem import service
from bot.postmortem.data import Event, PostmortemData
from bot.postmortem.ports import PostmortemChat
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind

log = logging.getLogger(__name__)

SHARING = "Sharing the post-mortem draft: "  # a draft's line until its outcome is known


@dataclass(frozen=True)
class Published:
    ref: str
    channel_id: str
    file_id: str
    filename: str
    events: int
    # Why the draft, shared in the channel, is not on the timeline: the database failed after Slack took it.
    unrecorded: str = ""
    earlier: datetime | None = None  # an earlier run shared it (and could not record it); recorded now
    # When an earlier run's draft, not recorded, may be in the channel too: Slack could not be searched for
    # it (`unsearched` says why), and a second draft is better than none.
    maybe_earlier: datetime | None = None
    unsearched: str = ""


async def share(deps: Deps, data: PostmortemData, *, actor: str | None, trigger: str) -> Published:
    """Share a draft asked for by a person. It is noted pending before the upload, as the resolve's is:
    when the database fails once Slack has it, the answer says it is shared but not recorded (not that
    it failed, which had people share it again), and the next run records that draft instead of sharing
    a second one. When Slack cannot be searched for that draft, a fresh one is shared all the same, and
    the answer says there may be two: a person asking for the draft must get one while Slack is unwell."""
    _channel(data)
    earlier = _unrecorded_draft(data, trigger=trigger)
    if earlier is not None:
        try:
            found = await _found(deps, data, pending=earlier)
        except ChatError as exc:
            log.warning("%s: could not look for the draft not recorded (%s); sharing a fresh one", data.ref, exc)
            await _settle(deps, pending=earlier, outcome="not recorded", detail=_unsearched(exc))
            published = await _upload(deps, data, actor=actor, trigger=trigger)
            return replace(published, maybe_earlier=earlier.at, unsearched=_error_text(exc))
        if found is not None:
            return replace(found, earlier=earlier.at)
        await _settle(deps, pending=earlier, outcome="not shared", detail="was not found in the channel")
    return await _upload(deps, data, actor=actor, trigger=trigger)


async def _upload(deps: Deps, data: PostmortemData, *, actor: str | None, trigger: str) -> Published:
    """Render, note pending, upload, record: `share`'s last step. A failed upload is raised (the person is
    answered); a failed record after it is said in the answer, not raised: the draft is in the channel."""
    draft = await _pending_draft(deps, data, actor=actor, trigger=trigger, pending=None)
    try:
        file_id = await _chat(deps).upload(data=data, filename=draft.filename, content=draft.content, trigger=trigger)
    except Exception as exc:
        await _relabel(deps, draft=draft, text=f"Post-mortem draft not shared: {_error_text(exc)}")
        raise
    try:
        return await _record_shared(deps, data, draft=draft, file_id=file_id)
    except Exception as exc:
        log.error("%s: the draft %s is shared but could not be recorded", data.ref, file_id, exc_info=exc)
        return replace(_published(data, file_id=file_id, filename=draft.filename), unrecorded=_error_text(exc))


async def share_after_resolve(deps: Deps, data: PostmortemData, *, actor: str | None) -> Published | None:
    """The automatic draft on resolve, shared at most once.

    A failure that retrying will not mend (no channel, Slack refused the file) is reported in the
    channel and on the timeline, never raised (a person can run `/incident postmortem`). A transient
    failure of the upload, or one once Slack may have shared it, is raised instead: the signal work
    tries again (and says so in the channel if it gives up), and the retry, seeing the pending event
    written before the upload, looks in the channel for the file before sharing another. Slack refusing
    that look for good (a scope missing, a token revoked) is reported once too: sharing another might
    make two.
    """
    try:
        _channel(data)
    except Exception as exc:
        await not_shared(deps, incident_id=data.number, exc=exc)
        return None
    earlier = _resolve_draft(data)
    if earlier is None:
        return await _share_once(deps, data, actor=actor, pending=None)
    if earlier.data.get("file_id"):
        log.info("%s: the draft was shared on resolve already", data.ref)
        return None
    try:
        found = await _found(deps, data, pending=earlier)
    except ChatError as exc:
        if is_transient(exc):
            raise  # Slack down, slow or throttling: the signal work tries again
        log.warning("%s: could not look for the resolve's draft (%s); not tried again", data.ref, exc)
        await _settle(deps, pending=earlier, outcome="not recorded", detail=_unsearched(exc))
        why = f"Slack could not be searched for the draft an earlier attempt may have shared ({_error_text(exc)})"
        await _report_failure(deps, incident_id=data.number, error=why)
        return None
    return found or await _share_once(deps, data, actor=actor, pending=earlier.id)


async def _share_once(deps: Deps, data: PostmortemData, *, actor: str | None, pending: int | None) -> Published | None:
    """Render, note the draft pending, share it; then record it on the pending event, a step whose
    failure is raised (the draft is in the channel: it must not be reported as not shared)."""
    try:
        draft = await _pending_draft(deps, data, actor=actor, trigger="resolve", pending=pending)
    except Exception as exc:
        await not_shared(deps, incident_id=data.number, exc=exc)
        return None
    try:
        file_id = await _chat(deps).upload(data=data, filename=draft.filename, content=draft.content, trigger="resolve")
    except Exception as exc:
        await _upload_failed(deps, data, draft=draft, exc=exc)
        return None
    return await _record_shared(deps, data, draft=draft, file_id=file_id)


async def _upload_failed(deps: Deps, data: PostmortemData, *, draft: _Draft, exc: Exception) -> None:
    """Slack did not share the draft (as far as the bot knows). A transient failure (Slack down, slow
    or throttling) is raised: the signal work tries again, looking for the file first, and says in the
    channel if it gives up. A refusal (no channel, not in it, archived, a missing scope) will not
    change by retrying: it is said in the channel once. The pending event says "not shared" either
    way, so the post-mortem and the dashboard never read a draft that is not in the channel as shared.
    """
    error = _error_text(exc)
    await _relabel(deps, draft=draft, text=f"Post-mortem draft not shared: {error}")
    if isinstance(exc, ChatError) and is_transient(exc):
        log.warning("%s: the draft was not shared (%s); the resolve's work is tried again", data.ref, error)
        raise exc
    if not isinstance(exc, BotError):
        log.error("post-mortem for %s failed", data.ref, exc_info=exc)
    code = exc.code if isinstance(exc, ChatError) else ""
    await _report_failure(deps, incident_id=data.number, error=error, code=code, on_timeline=False)


@dataclass(frozen=True)
class _Draft:
    """A rendered draft, noted pending on the timeline (`pending`: the event, `noted`: what it says) before
    it is uploaded."""

    filename: str
    content: bytes
    pending: int
    noted: events.PostmortemEvent

    def done(self, file_id: str | None = None) -> events.PostmortemEvent:
        """The payload once the outcome is known: shared (`file_id`) or not."""
        return self.noted.model_copy(update={"file_id": file_id, "pending": False})


async def _pending_draft(
    deps: Deps, data: PostmortemData, *, actor: str | None, trigger: str, pending: int | None
) -> _Draft:
    """Render the draft and note it pending: a new line, or an earlier run's (`pending`) reused, which is
    pending again until this upload's outcome is written (it may read "not shared" from its own run)."""
    filename, content = await _render(deps, data)
    noted = _draft_event(data, file_id=None, filename=filename, size=len(content), trigger=trigger)
    text = f"{SHARING}{filename}"
    if pending is None:
        pending = await timeline.record_pending(deps, incident_id=data.number, actor=actor, payload=noted, text=text)
    else:
        await timeline.complete(deps, event_id=pending, payload=noted, text=text)
    return _Draft(filename, content, pending, noted)


def _draft_event(
    data: PostmortemData, *, file_id: str | None, filename: str, size: int, trigger: str
) -> events.PostmortemEvent:
    return events.PostmortemEvent(
        file_id=file_id,
        filename=filename,
        format="markdown",
        bytes=size,
        trigger=trigger,
        events=len(data.events),
        finished=False,  # a draft; the escalation reminder waits for a finished one
        pending=True,  # until the line is completed with what became of the draft
    )


async def _record_shared(deps: Deps, data: PostmortemData, *, draft: _Draft, file_id: str) -> Published:
    """The uploaded draft recorded on its pending event."""
    text = f"Post-mortem draft shared: {draft.filename}"
    await timeline.complete(deps, event_id=draft.pending, payload=draft.done(file_id), text=text)
    return _published(data, file_id=file_id, filename=draft.filename)


async def _relabel(deps: Deps, *, draft: _Draft, text: str) -> None:
    try:
        await timeline.complete(deps, event_id=draft.pending, payload=draft.done(), text=text)
    except Exception:
        log.exception("could not note on the timeline that the post-mortem draft was not shared")


def _unrecorded_draft(data: PostmortemData, *, trigger: str) -> Event | None:
    """The last draft shared this way, when it has no file: its run failed, maybe once Slack had it."""
    drafts = [e for e in data.events if e.kind == Kind.POSTMORTEM and e.data.get("trigger") == trigger]
    return drafts[-1] if drafts and not drafts[-1].data.get("file_id") else None


def _resolve_draft(data: PostmortemData) -> Event | None:
    """The resolve's draft on the timeline: shared (it has a file id), else pending (an earlier run was
    sharing it and failed or died before it could record the file). IncidentResolved comes again then."""
    drafts = [e for e in data.events if e.kind == Kind.POSTMORTEM and e.data.get("trigger") == "resolve"]
    return next((e for e in drafts if e.data.get("file_id")), drafts[0] if drafts else None)


def _still_pending(event: Event) -> bool:
    """Whether a draft's line still waits for its outcome. Its payload says so (`pending`), but for a line
    written before the field existed: that one is pending while it reads as written before the upload."""
    pending = event.data.get("pending")
    return bool(pending) if pending is not None else event.text.startswith(SHARING)


async def _settle(deps: Deps, *, pending: Event, outcome: str, detail: str) -> None:
    """An earlier draft's line still pending ("Sharing…") once a run knows what became of that draft, or
    that Slack cannot tell: the line says so. A line that says an outcome already (not shared, and why)
    keeps it."""
    if not _still_pending(pending):
        return
    text = f"Post-mortem draft {outcome}: {pending.data.get('filename') or ''} {detail}"
    try:
        payload = events.PostmortemEvent.model_validate({**pending.data, "pending": False})
        await timeline.complete(deps, event_id=pending.id, payload=payload, text=text)
    except Exception:
        log.exception("could not note on the timeline what became of an earlier post-mortem draft")


def _unsearched(exc: ChatError) -> str:
    return f"may be in the channel (Slack could not be searched: {_error_text(exc)})"


async def _found(deps: Deps, data: PostmortemData, *, pending: Event) -> Published | None:
    """The draft an earlier run shared but could not record, recorded now; None when Slack has none.
    A failed lookup is raised: sharing without knowing could share a second draft."""
    filename = service.filename(data, fmt="markdown")
    file_id = await _chat(deps).find_shared(channel_id=_channel(data), filename=filename, since=pending.at)
    if file_id is None or file_id in {e.data.get("file_id") for e in data.events if e.kind == Kind.POSTMORTEM}:
        return None  # none, or a later draft already on the timeline (the newest is found first)
    log.info("%s: recording the draft shared before the last attempt failed", data.ref)
    payload = events.PostmortemEvent.model_validate({**pending.data, "file_id": file_id, "pending": False})
    await timeline.complete(deps, event_id=pending.id, payload=payload, text=f"Post-mortem draft shared: {filename}")
    return _published(data, file_id=file_id, filename=filename)


def _chat(deps: Deps) -> PostmortemChat:
    if deps.postmortem_chat is None:
        raise RuntimeError("no chat adapter is set up for the post-mortem")
    return deps.postmortem_chat


def _channel(data: PostmortemData) -> str:
    if not data.channel_id:
        raise InvalidState(
            f"{data.ref} has no channel to share the post-mortem in. "
            f"On the server, `python -m bot postmortem {data.ref}` prints it."
        )
    return data.channel_id


async def _render(deps: Deps, data: PostmortemData) -> tuple[str, bytes]:
    """The draft's file name and Markdown, with the names of the people it mentions."""
    data.user_names = await _chat(deps).user_names(user_ids=service.people(data))
    # Rendering a big timeline takes a few hundred ms of CPU: keep it off the event loop.
    document = await asyncio.to_thread(
        service.render, data, fmt="markdown", templates_dir=deps.settings.config.postmortem.templates_dir
    )
    return service.filename(data, fmt="markdown"), document.encode("utf-8")


def _published(data: PostmortemData, *, file_id: str, filename: str) -> Published:
    return Published(
        ref=data.ref, channel_id=_channel(data), file_id=file_id, filename=filename, events=len(data.events)
    )


def _error_text(exc: Exception) -> str:
    return str(exc) if isinstance(exc, BotError) else f"internal error ({type(exc).__name__})"


async def not_shared(deps: Deps, *, incident_id: int, exc: Exception) -> None:
    """The draft could not be built or shared: said in the channel and on the timeline, not raised."""
    if isinstance(exc, BotError):
        log.warning("post-mortem for INC-%s not shared: %s", incident_id, exc)
    else:
        log.exception("post-mortem for INC-%s failed", incident_id, exc_info=exc)
    await _report_failure(deps, incident_id=incident_id, error=_error_text(exc))


async def _report_failure(
    deps: Deps, *, incident_id: int, error: str, code: str = "", on_timeline: bool = True
) -> None:
    """Say it in the channel, and on the timeline unless an event there says so already."""
    try:
        async with deps.db.session() as session:
            if on_timeline:
                await timeline.record(
                    session,
                    incident_id=incident_id,
                    at=deps.clock.now(),
                    text=f"Post-mortem draft not shared: {error}",
                    payload=events.ChatError(step="postmortem"),
                )
            incident = await session.get(Incident, incident_id)
        if incident is not None and incident.channel_id:
            base = deps.settings.dashboard_url
            dashboard = f"{base}/incidents/{incident.ref}/postmortem?format=markdown" if base else None
            await _chat(deps).report_failure(
                channel_id=incident.channel_id, ref=incident.ref, error=error, code=code, dashboard=dashboard
            )
    except Exception:
        log.exception("could not report the post-mortem failure for INC-%s", incident_id)
