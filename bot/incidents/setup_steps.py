"""The channel setup's steps: channel, invite, topic, summary, pin, announcement, and the lease that
keeps two runs of them apart (`flows.finish_setup` runs them).

No transaction stays open across a Slack call; each step's record is its own short session, and
the last ones are written with the lease's release.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TypeVar

from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents import setup_rows
from bot.incidents.adopt import post_once
from bot.incidents.channels import create_channel
from bot.incidents.models import Incident
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)
T = TypeVar("T")


async def release_lease(deps: Deps, *, incident_id: int, held: datetime) -> None:
    try:
        async with deps.db.session() as session:
            await setup_rows.release_setup(session, incident_id=incident_id, held=held)
    except Exception as exc:
        # The database is down: remember the lease is ours, so Retry setup need not wait it out.
        log.warning("could not release the setup lease of INC-%s: %s", incident_id, type(exc).__name__)
        deps.unreleased_setup_leases[incident_id] = held


class SetupLease:
    """Keeps the setup's lease while it runs: a setup can outlast `SETUP_LEASE` (Slack throttles
    channel creation for minutes in a storm), and an expired lease let a second run (a Retry click,
    an alert's sync) post and pin a second summary and announcement."""

    # The wait between renewals; a test replaces it to drive the renewals on an injected clock.
    beat: Callable[[float], Awaitable[None]] = staticmethod(asyncio.sleep)

    def __init__(self, deps: Deps, *, incident_id: int, held: datetime) -> None:
        self.deps = deps
        self.incident_id = incident_id
        self.held = held

    async def keep(self) -> None:
        while True:
            await self.beat(setup_rows.SETUP_LEASE.total_seconds() / 3)
            now = self.deps.clock.now()
            try:
                async with self.deps.db.session() as session:
                    if not await setup_rows.renew_setup(session, incident_id=self.incident_id, held=self.held, now=now):
                        log.warning("the setup lease of INC-%s was taken over", self.incident_id)
                        return
            except Exception as exc:  # the database blinked: try again at the next beat
                log.warning("could not renew the setup lease of INC-%s: %s", self.incident_id, type(exc).__name__)
                continue
            self.held = now


@dataclass
class Steps:
    """The setup's writes and Slack steps for one incident, and the problems met on the way."""

    deps: Deps
    incident_id: int
    problems: list[str] = field(default_factory=list)
    last: dict[str, str | None] = field(default_factory=dict)  # written with the lease's release
    shown: Incident | None = None  # the row the topic, summary and announcement were made from

    async def save(self, release: datetime | None = None, **values: str | None) -> Incident:
        """Only what the setup made: the incident lived on meanwhile (`setup_rows.SETUP_FIELDS`)."""
        async with self.deps.db.session() as session:
            now = self.deps.clock.now()
            return await setup_rows.record_setup(
                session, incident_id=self.incident_id, now=now, values=values, release=release
            )

    async def attempt(self, step: str, call: Callable[[], Awaitable[T]]) -> T | None:
        """One Slack step, after the page DMs still to go out; a failure is recorded and the setup goes on."""
        await self.deps.priority.step()
        try:
            return await call()
        except ChatError as exc:
            self.problems.append(f"{step} failed ({exc.code or exc})")
            await timeline.record_now(
                self.deps,
                incident_id=self.incident_id,
                text=f"{step} failed: {exc}",
                payload=events.ChatError(step=step, code=exc.code),
            )
            return None


async def run_steps(steps: Steps, incident: Incident, *, actor: str, adopt: bool) -> Incident:
    """The channel's record is written at once; the summary's and the announcement's (`steps.last`) are
    the caller's to write, with the lease's release. A crash in between: a resumed setup or a Retry
    adopts the posts it finds (`post_once`) instead of posting them twice.

    No transaction stays open across a Slack call: slack_sdk may sleep on Retry-After, and a storm
    of declares must not drain the connection pool. Each write is its own short session.
    """
    deps = steps.deps
    chat = deps.incident_chat
    incident_id = incident.id or 0
    attempt, problems = steps.attempt, steps.problems

    if incident.channel_id is None:
        channel = await attempt("creating the channel", lambda: create_channel(deps, incident, adopt=adopt))
        if channel is None:
            steps.last["setup_error"] = "; ".join(problems)
            return incident
        async with deps.db.session() as session:
            incident = await setup_rows.set_channel(
                session, incident_id=incident_id, channel_id=channel.id, channel_name=channel.name, now=deps.clock.now()
            )
    channel_id = incident.channel_id
    assert channel_id is not None
    steps.shown = incident

    invitees = sorted({incident.declared_by, actor} - {""})
    await attempt("inviting the declarer", lambda: chat.invite(channel_id=channel_id, users=invitees))
    deps.incident_access.forget(channel_id=channel_id)
    await attempt("setting the topic", lambda: chat.set_topic(incident=incident))
    summary = partial(chat.post_summary, incident=incident)
    summary_ts = incident.summary_ts
    if summary_ts is None:
        summary_ts = await attempt(
            "posting the summary", lambda: post_once(deps, incident, "summary", channel_id, summary, adopt)
        )
        if summary_ts is not None:
            steps.last["summary_ts"] = summary_ts
    if summary_ts is not None:
        await attempt("pinning the summary", lambda: chat.pin(channel_id=channel_id, message_ts=summary_ts))

    where = deps.settings.config.channels.announcements
    if where and incident.announcement_ts is None:
        announce = partial(chat.announce, incident=incident, channel=where)
        step = "announcing in the announcements channel"
        ts = await attempt(step, lambda: post_once(deps, incident, "announcement", where, announce, adopt))
        if ts is not None:
            steps.last.update(announcement_ts=ts, announcement_channel=where)

    error = "; ".join(problems) or None
    if incident.setup_error != error:  # a clean first run has nothing to clear
        steps.last["setup_error"] = error
    return incident
