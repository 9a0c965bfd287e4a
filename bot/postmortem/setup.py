"""Wires the post-mortem into the bot: a draft on every resolve, shared in the incident channel."""

from __future__ import annotations

import logging

from bot.deps import Deps
from bot.postmortem import flows
from bot.signals import IncidentResolved

log = logging.getLogger(__name__)


def setup(deps: Deps) -> None:
    async def on_resolved(event: IncidentResolved) -> None:
        # Published from a task already (the reply never waits on the upload); done when this returns.
        await flows.publish_after_resolve(deps, incident_id=event.incident_id, actor=event.actor)

    # `does` is also what the channel is told to do by hand if the signal work gives the draft up.
    deps.bus.subscribe(IncidentResolved, on_resolved, does="share the post-mortem draft (`/incident postmortem`)")
