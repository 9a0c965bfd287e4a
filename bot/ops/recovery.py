"""Restarts and rollbacks a crash interrupted: closed as `interrupted`, with a line in their channel.

A kill -9 while a deploy was being followed left its audit row `started` for good, and the
people who asked never heard how it ended. At start-up every `started` row nobody can still be
following is closed: on SQLite (one process) all of them; on PostgreSQL, where another replica
may be following a young one, those older than the longest deploy timeout plus the health
checks. The sweep closes the rest as they age.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta

from bot.clock import utc
from bot.db import Database
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.recovery import SWEEP_EVERY, Sweep
from bot.ops import service
from bot.ops.models import Action, AuditLog

log = logging.getLogger(__name__)

# Beyond its deploy timeout a follow still re-checks health for a little while (ops.runner).
FOLLOW_MARGIN = timedelta(minutes=5)


def _followed_at_most(deps: Deps) -> timedelta:
    timeouts = [s.deploy_timeout for s in deps.settings.config.services.values()]
    return max(timeouts, default=timedelta(minutes=10)) + FOLLOW_MARGIN


def interrupted_by(deps: Deps, started_at: datetime) -> datetime:
    """When a `started` row nobody follows any more (its replica died) is closed by the sweep at the latest,
    to the minute: until then a new restart or rollback of its service is refused."""
    latest = utc(started_at) + _followed_at_most(deps) + SWEEP_EVERY
    whole = latest.replace(second=0, microsecond=0)
    return whole if whole == latest else whole + timedelta(minutes=1)


async def close_interrupted(deps: Deps, *, at_start: bool) -> list[AuditLog]:
    now = deps.clock.now()
    alone = at_start and _single_process(deps.db)
    before = None if alone else now - _followed_at_most(deps)
    async with deps.db.session() as session:
        closed = await service.interrupt_started(session, now=now, before=before)
    for row in closed:
        what = f"{Action(row.action).verb} of {row.service}"
        log.warning("%s started by %s was interrupted (the bot stopped while following it)", what, row.actor)
        if not row.channel_id or deps.chat is None:
            continue
        # The service is a bot.yml key and the actor a Slack user ID: nothing a user typed.
        text = (
            f"⚠️ The {row.action} of *{row.service}* that <@{row.actor}> started was interrupted: "
            f"the bot stopped while following it, so how it ended is not known. "
            f"Check it with `/status {row.service}` and run `/{row.action} {row.service}` again if needed."
        )
        try:
            await deps.chat.post_line(channel_id=row.channel_id, text=text)
        except ChatError as exc:
            log.warning("could not tell #%s that the %s was interrupted: %s", row.channel_id, what, exc)
    return closed


def _single_process(db: Database) -> bool:
    """SQLite serves one process (README: more than one replica needs PostgreSQL)."""
    return db.is_sqlite


def setup(deps: Deps) -> None:
    first = True

    async def check() -> None:
        nonlocal first
        at_start, first = first, False
        await close_interrupted(deps, at_start=at_start)

    sweep = Sweep(check, every=SWEEP_EVERY, name="close interrupted restarts and rollbacks")
    deps.ops_sweep = sweep
    deps.on_start.append(sweep.start)
    deps.on_stop.insert(0, sweep.stop)
