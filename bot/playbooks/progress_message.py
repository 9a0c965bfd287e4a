"""The progress message: one message per incident, edited in place.

A refresh reads the run's state from the database and renders it, serialised per run so two quick
clicks never leave an older rendering on top of a newer one. A run just started is shown from
what was written, without reading it back.
"""

from __future__ import annotations

import logging

from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.playbooks import checklist, runs
from bot.playbooks.checklist import Progress
from bot.playbooks.models import PlaybookRun
from bot.playbooks.schema import Playbook
from bot.timeline import own

log = logging.getLogger(__name__)


async def refresh(deps: Deps, *, run_id: int) -> Progress:
    """Render the run's progress into its message: edit it in place, or post it the first time."""
    async with deps.playbook_locks.hold(run_id):
        async with deps.db.session() as session:
            progress = await checklist.progress(session, run_id=run_id, config=deps.settings.config)
            incident = await session.get(Incident, progress.incident_id)  # loaded by `progress`: no query
            assert incident is not None
        return await show(deps, progress, channel_id=incident.channel_id)


async def show(deps: Deps, progress: Progress, *, channel_id: str | None) -> Progress:
    """Edit the progress message, or post it in the incident's channel and remember where (under the run's lock)."""
    port = deps.playbook_chat
    if port is None:
        return progress
    if progress.progress_ts and progress.progress_channel:
        where = {"channel_id": progress.progress_channel, "message_ts": progress.progress_ts}
        text = await port.update_progress(channel_id=where["channel_id"], ts=where["message_ts"], progress=progress)
        await own.restate(deps, text=text, **where)  # Slack does not tell the bot of its own edits
        return progress
    if not channel_id:
        return progress  # no channel (its creation failed): shown once the playbook is started again
    ts = await port.post_progress(channel_id=channel_id, progress=progress)
    async with deps.db.session() as session:
        await runs.set_progress_message(session, run_id=progress.run_id, channel=channel_id, ts=ts)
    return progress


async def show_new(deps: Deps, *, run: PlaybookRun, playbook: Playbook, incident: Incident) -> Progress:
    """A run just started: its progress is what was written (every step pending), so nothing is read back."""
    assert run.id is not None
    async with deps.playbook_locks.hold(run.id):
        progress = checklist.compose(
            run=run, incident=incident, states=[], config=deps.settings.config, playbook=playbook
        )
        return await show(deps, progress, channel_id=incident.channel_id)


async def refresh_quietly(deps: Deps, run_id: int) -> None:
    """The change is recorded already; a Slack failure here must not turn it into an error."""
    try:
        await refresh(deps, run_id=run_id)
    except ChatError:
        log.warning("could not update the progress message of playbook run %s", run_id, exc_info=True)
