"""The channel setup's rows: its lease on the incident and the columns it writes.

The setup runs for seconds (minutes while Slack throttles channel creation) while the incident
lives on, so it holds a lease in the row (`setup_claimed_at`) and writes only its own columns.
Its writes are prebuilt Core statements: every declaration makes four of them. The notes that a
signal's follow-up work is done (`channel_ready_at`, `resolve_handled_at`) are here too.
"""

from __future__ import annotations

import functools
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Update, bindparam, case, null, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import NotFound
from bot.incidents.models import INCIDENTS, Incident, Status
from bot.timeline import events
from bot.timeline import service as timeline

# What the channel setup writes. The setup runs for seconds (minutes while Slack throttles channel
# creation) as the incident lives on: pages go out first and are acknowledged, the severity changes,
# the incident may even be resolved. So the setup writes these columns only, never the row it read
# when it started, which would put all of that back.
SETUP_FIELDS = frozenset(
    {"channel_id", "channel_name", "summary_ts", "announcement_ts", "announcement_channel", "setup_error"}
)


async def set_channel(
    session: AsyncSession, *, incident_id: int, channel_id: str, channel_name: str, now: datetime
) -> Incident:
    text = f"channel #{channel_name} created"
    await timeline.add(session, incident_id=incident_id, at=now, text=text, payload=events.Setup())
    return await record_setup(
        session, incident_id=incident_id, now=now, values={"channel_id": channel_id, "channel_name": channel_name}
    )


async def record_setup(
    session: AsyncSession,
    *,
    incident_id: int,
    now: datetime,
    values: dict[str, str | None],
    release: datetime | None = None,
) -> Incident:
    """Write what the setup made (`SETUP_FIELDS` only); returns the incident as it is now (RETURNING, no re-read).

    `release`: the lease held since then is given back in the same UPDATE (if it is still ours), so the
    setup's last write and the end of its lease are one transaction, not two.
    """
    if unknown := set(values) - SETUP_FIELDS:
        raise ValueError(f"not the setup's to write: {sorted(unknown)}")
    params: dict[str, Any] = {f"new_{name}": value for name, value in values.items()}
    statement = _setup_write(frozenset(values), release=release is not None)
    if values:
        params["new_updated_at"] = now
    if release is not None:
        params["held"] = release
    incident = await _update_returning(session, statement, {**params, "incident_id": incident_id})
    await session.commit()
    if incident is None:
        raise NotFound(f"INC-{incident_id} does not exist.")
    return incident


async def _update_returning(session: AsyncSession, statement: Update, params: dict[str, Any]) -> Incident | None:
    """One prebuilt UPDATE … RETURNING the row as written (SQLite >= 3.35 and PostgreSQL); None when nothing matched.

    Core statements built once, and the incident built from the row: the ORM's UPDATE of the same
    row costs about a third more (benchmarks/statement_cost.py), and every declaration makes four.
    The incident returned is a value, not attached to the session.
    """
    row = (await session.exec(statement, params=params)).one_or_none()
    return None if row is None else Incident.model_validate(row._mapping)


@functools.cache
def _setup_write(fields: frozenset[str], *, release: bool = False) -> Update:
    """`UPDATE incidents SET <fields>, updated_at [, the lease freed if ours] WHERE id RETURNING *`, built once."""
    values: dict[str, Any] = {
        name: bindparam(f"new_{name}") for name in sorted(fields | {"updated_at"} if fields else ())
    }
    if release:
        claimed = INCIDENTS.c.setup_claimed_at
        values["setup_claimed_at"] = case((claimed == bindparam("held"), null()), else_=claimed)
    return update(INCIDENTS).where(INCIDENTS.c.id == bindparam("incident_id")).values(values).returning(*INCIDENTS.c)


# The lease is free when nobody holds it, when it expired, or when it is a lease of ours that could
# not be released (`ours`; NULL matches nothing).
_TAKE_SETUP = (
    update(INCIDENTS)
    .where(
        INCIDENTS.c.id == bindparam("incident_id"),
        INCIDENTS.c.setup_claimed_at.is_(None)
        | (INCIDENTS.c.setup_claimed_at < bindparam("expired"))
        | (INCIDENTS.c.setup_claimed_at == bindparam("ours")),
    )
    .values(setup_claimed_at=bindparam("now"))
    .returning(*INCIDENTS.c)
)


SETUP_LEASE = timedelta(seconds=120)


async def claim_setup(session: AsyncSession, *, incident_id: int, now: datetime, ours: datetime | None = None) -> bool:
    """Take the setup lease; False while another run holds it (an expired lease is taken over)."""
    return await take_setup(session, incident_id=incident_id, now=now, ours=ours) is not None


async def take_setup(
    session: AsyncSession, *, incident_id: int, now: datetime, ours: datetime | None = None
) -> Incident | None:
    """Take the setup lease and return the incident as claimed; None while another run holds it.

    An expired lease is taken over. `ours`: a lease this process took at that time and could not
    release (the database was down): nobody is running that setup, so it is taken over at once.
    """
    params = {"incident_id": incident_id, "now": now, "expired": now - SETUP_LEASE, "ours": ours}
    incident = await _update_returning(session, _TAKE_SETUP, params)
    await session.commit()
    return incident


# Setups interrupted longer ago than this are left alone: a forgotten week-old incident should not
# suddenly get a channel and a DM because the bot restarted today.
RESUME_WITHIN = timedelta(hours=24)


async def unfinished_setups(session: AsyncSession, *, now: datetime) -> list[Incident]:
    """Open incidents whose setup a crash interrupted, once nobody can still be running it.

    Either a run took the lease and never gave it back (killed mid-setup; an expired lease is
    nobody's), or none ever took it: the row was committed and the process died before its setup
    started (no channel, no recorded failure, declared longer ago than a lease). A setup that ran
    and failed has `setup_error` and its Retry button: that is the declarer's to press.
    """
    expired = now - SETUP_LEASE
    abandoned = col(Incident.setup_claimed_at).is_not(None) & (col(Incident.setup_claimed_at) < expired)
    never_started = (
        col(Incident.setup_claimed_at).is_(None)
        & col(Incident.channel_id).is_(None)
        & col(Incident.setup_error).is_(None)
        & (col(Incident.declared_at) < expired)
    )
    result = await session.exec(
        select(Incident)
        .where(
            col(Incident.status) != Status.RESOLVED,
            col(Incident.declared_at) >= now - RESUME_WITHIN,
            abandoned | never_started,
        )
        .order_by(col(Incident.id))
    )
    return list(result.all())


async def channels_not_ready(session: AsyncSession, *, now: datetime) -> list[Incident]:
    """Open incidents whose setup ended with a channel but whose channel-ready work is not done (a crash, a failed
    handler); `signal_work.due` says which of them to publish again now."""
    result = await session.exec(
        select(Incident)
        .where(
            col(Incident.status) != Status.RESOLVED,
            col(Incident.declared_at) >= now - RESUME_WITHIN,
            col(Incident.declared_at) < now - SETUP_LEASE,  # its own setup is surely done with it
            col(Incident.channel_id).is_not(None),
            col(Incident.setup_claimed_at).is_(None),
            col(Incident.channel_ready_at).is_(None),
        )
        .order_by(col(Incident.id))
    )
    return list(result.all())


_CHANNEL_READY = (
    update(INCIDENTS).where(INCIDENTS.c.id == bindparam("incident_id")).values(channel_ready_at=bindparam("now"))
)


async def mark_channel_ready(session: AsyncSession, *, incident_id: int, now: datetime | None) -> None:
    """IncidentChannelReady's handlers all returned (or were given up): the sweep need not publish it again.

    None: a retry of it is planned after all (a new series of attempts), for the sweep to publish."""
    await session.exec(_CHANNEL_READY, params={"incident_id": incident_id, "now": now})
    await session.commit()


# IncidentResolved's handlers (a Slack upload, PagerDuty with its retries) may take a couple of
# minutes on a live bot; publishing it again while they run would share the draft twice.
RESOLVE_GRACE = timedelta(minutes=3)


async def resolves_not_handled(session: AsyncSession, *, now: datetime) -> list[Incident]:
    """Incidents resolved in the last day whose IncidentResolved work is not done (a crash, a failed handler)."""
    result = await session.exec(
        select(Incident)
        .where(
            col(Incident.status) == Status.RESOLVED,
            col(Incident.resolved_at) >= now - RESUME_WITHIN,
            col(Incident.resolved_at) < now - RESOLVE_GRACE,
            col(Incident.resolve_handled_at).is_(None),
        )
        .order_by(col(Incident.id))
    )
    return list(result.all())


_RESOLVE_HANDLED = (
    update(INCIDENTS).where(INCIDENTS.c.id == bindparam("incident_id")).values(resolve_handled_at=bindparam("now"))
)


async def mark_resolve_handled(session: AsyncSession, *, incident_id: int, now: datetime | None) -> None:
    """IncidentResolved's handlers all returned (or were given up): the sweep need not publish it again.

    None: a retry of it is planned after all (a new series of attempts), for the sweep to publish."""
    await session.exec(_RESOLVE_HANDLED, params={"incident_id": incident_id, "now": now})
    await session.commit()


async def renew_setup(session: AsyncSession, *, incident_id: int, held: datetime, now: datetime) -> bool:
    """Move our lease (taken or last renewed at `held`) to `now`; False when it is not ours any more."""
    result = await session.exec(
        update(Incident)
        .where(col(Incident.id) == incident_id, col(Incident.setup_claimed_at) == held)
        .values(setup_claimed_at=now)
    )
    await session.commit()
    return bool(result.rowcount)


async def release_setup(session: AsyncSession, *, incident_id: int, held: datetime) -> None:
    """Give the lease back, if it is still ours (a run that lost it must not free another's)."""
    await session.exec(
        update(INCIDENTS)
        .where(INCIDENTS.c.id == incident_id, INCIDENTS.c.setup_claimed_at == held)
        .values(setup_claimed_at=None)
    )
    await session.commit()


_REPLACE_SUMMARY = (
    update(INCIDENTS)
    .where(INCIDENTS.c.id == bindparam("incident_id"), INCIDENTS.c.summary_ts == bindparam("old"))
    .values(summary_ts=bindparam("new"), updated_at=bindparam("now"))
    .returning(INCIDENTS.c.id)
)
_FORGET_ANNOUNCEMENT = (
    update(INCIDENTS)
    .where(INCIDENTS.c.id == bindparam("incident_id"), INCIDENTS.c.announcement_ts == bindparam("old"))
    .values(announcement_ts="", updated_at=bindparam("now"))
    .returning(INCIDENTS.c.id)
)


async def replace_summary(session: AsyncSession, *, incident_id: int, old: str, new: str, now: datetime) -> bool:
    """The summary someone deleted, posted again; False when another run replaced it first (compare-and-set)."""
    params = {"incident_id": incident_id, "old": old, "new": new, "now": now}
    replaced = (await session.exec(_REPLACE_SUMMARY, params=params)).one_or_none() is not None
    if replaced:
        text = "the pinned summary was deleted in Slack; posted it again"
        await timeline.add(session, incident_id=incident_id, at=now, text=text, payload=events.Setup(ts=new))
    await session.commit()
    return replaced


async def forget_announcement(session: AsyncSession, *, incident_id: int, old: str, now: datetime) -> None:
    """The announcement someone deleted: "" (not NULL, which a resumed setup would post again) ends its updates."""
    params = {"incident_id": incident_id, "old": old, "now": now}
    if (await session.exec(_FORGET_ANNOUNCEMENT, params=params)).one_or_none() is not None:
        text = "the announcement was deleted in Slack; it is no longer updated"
        await timeline.add(session, incident_id=incident_id, at=now, text=text, payload=events.Setup())
    await session.commit()


# Bookkeeping that no message of the incident shows: a change of these alone needs no refresh.
_NOT_SHOWN = SETUP_FIELDS | {
    "updated_at",
    "setup_claimed_at",
    "planned_severity",
    "channel_ready_at",
    "resolve_handled_at",
}


def moved_on(before: Incident, after: Incident) -> bool:
    """Whether the incident changed, beyond its bookkeeping, between two reads of its row."""
    ignored = set(_NOT_SHOWN)
    return before.model_dump(exclude=ignored) != after.model_dump(exclude=ignored)
