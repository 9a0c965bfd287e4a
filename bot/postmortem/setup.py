"""Wires the post-mortem into the bot: a draft on every resolve, shared in the incident channel."""

from __future__ import annotations

import asyncio
import logging

from bot.deps import Deps
from bot.postmortem import flows
from bot.signals import IncidentResolved

log = logging.getLogger(__name__)


class Publisher:
    """Runs the upload after a resolve in its own task, so the resolve reply never waits on Slack uploads."""

    def __init__(self, deps: Deps) -> None:
        self.deps = deps
        self.tasks: set[asyncio.Task[object]] = set()

    async def on_resolved(self, event: IncidentResolved) -> None:
        task = asyncio.create_task(
            flows.publish_after_resolve(self.deps, incident_id=event.incident_id, actor=event.actor),
            name=f"postmortem-INC-{event.incident_id}",
        )
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def stop(self) -> None:
        """Let drafts being shared finish (briefly) before the process exits."""
        if not self.tasks:
            return
        done, pending = await asyncio.wait(set(self.tasks), timeout=10)
        for task in pending:
            log.warning("post-mortem task %s cancelled at shutdown", task.get_name())
            task.cancel()


def setup(deps: Deps) -> None:
    publisher = Publisher(deps)
    deps.services["postmortem"] = publisher
    deps.bus.subscribe(IncidentResolved, publisher.on_resolved)
    deps.on_stop.append(publisher.stop)
