"""Alert groups in the database: reading them and ingesting a delivery.

Everything two deliveries (or two replicas) can race on is settled by the database:
- the group row: `INSERT ... ON CONFLICT DO NOTHING` on (source, key_hash), then read;
- group changes: `UPDATE ... WHERE revision = :seen` (optimistic; a loser re-reads and retries);
- alerts of a group: `INSERT ... ON CONFLICT (group_id, fingerprint) DO UPDATE`;
- declaring: `UPDATE ... SET declare_state = 'claimed' WHERE declare_state IN (...) AND incident_id IS NULL`,
  so exactly one caller declares (`claims.py`, with the incident link);
- showing it in Slack: a lease (`sync_token`) taken with a conditional UPDATE (`leases.py`).
What a delivery writes over the group's columns (a new episode or the same one) is `episodes.py`; which
group a named sender's delivery writes to (an HA replica's, one stored by an earlier version) is `senders.py`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts import episodes
from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.ordering import without_late_resolves
from bot.alerts.payloads import Notification
from bot.alerts.rules import Proposal, describe_rule
from bot.alerts.senders import linked, stored_group
from bot.alerts.state import GroupState, describe_change, group_state
from bot.db import upsert_insert
from bot.exceptions import NotFound
from bot.incidents import impact
from bot.timeline import deliveries, events
from bot.timeline import service as timeline

MAX_OPTIMISTIC_TRIES = 20


class Replayed(Exception):
    """The delivery was applied before: nothing of it is written again."""


@dataclass(frozen=True)
class IngestResult:
    """What the webhook answers: the group, the revision this delivery made, and the linked incident."""

    group_id: int
    revision: int
    incident_id: int | None
    # The sender is outside the incident's channel: a private incident is not named to it either.
    incident_private: bool = False


async def get_group(session: AsyncSession, *, group_id: int) -> AlertGroup:
    result = await session.exec(
        select(AlertGroup).where(AlertGroup.id == group_id).execution_options(populate_existing=True)
    )
    group = result.first()
    if group is None:
        raise NotFound(f"alert group {group_id} does not exist (the message may be from another bot)")
    return group


async def instances(session: AsyncSession, *, group_id: int) -> list[AlertInstance]:
    result = await session.exec(
        select(AlertInstance)
        .where(AlertInstance.group_id == group_id)
        .order_by(col(AlertInstance.status), col(AlertInstance.first_seen_at), col(AlertInstance.id))
        .execution_options(populate_existing=True)
    )
    return list(result.all())


async def ingest(
    session: AsyncSession, *, note: Notification, proposal: Proposal, source_name: str, now: datetime
) -> IngestResult:
    """Store one delivery; the caller answers the webhook only after this returns. `source_name`: what
    this app calls the source, for the linked incident's timeline."""
    group_id = await _group_id(session, note=note, now=now)
    rule = describe_rule(proposal.rule)[:300] if proposal.rule is not None else None
    for _ in range(MAX_OPTIMISTIC_TRIES):
        try:
            result = await _apply(
                session, group_id=group_id, note=note, proposal=proposal, rule=rule, source_name=source_name, now=now
            )
        except Replayed:
            group = await get_group(session, group_id=group_id)
            return IngestResult(group_id=group_id, revision=group.revision, incident_id=None)
        if result is not None:
            return result
    raise RuntimeError(f"alert group {group_id}: too many concurrent updates, giving up (the sender will retry)")


async def _group_id(session: AsyncSession, *, note: Notification, now: datetime) -> int:
    """The group's row, created empty by whichever delivery comes first (revision 0: nothing applied yet),
    unless the delivery belongs to another stored group (`senders`)."""
    stored = await stored_group(session, note=note)
    if stored is not None:
        return stored
    await session.exec(
        upsert_insert(session, AlertGroup)
        .values(
            source=note.source,
            key_hash=note.key_hash,
            group_key=note.group_key,
            receiver=note.receiver[:200],
            status=note.status,
            title=note.title(),
            first_seen_at=now,
            last_seen_at=now,
            revision=0,
            synced_revision=0,
            episode=1,
            notifications=0,
            truncated=0,
            firing_total=0,
            attempts=0,
            declare_state=DeclareState.NONE,
            resolve_offer_pending=False,
            clears=0,
            group_labels={},
            common_labels={},
            common_annotations={},
            summary="",
        )
        .on_conflict_do_nothing(index_elements=["source", "key_hash"])
    )
    await session.commit()
    row = await session.exec(
        select(AlertGroup.id).where(AlertGroup.source == note.source, AlertGroup.key_hash == note.key_hash)
    )
    return int(row.one() or 0)


async def _apply(
    session: AsyncSession,
    *,
    group_id: int,
    note: Notification,
    proposal: Proposal,
    rule: str | None,
    source_name: str,
    now: datetime,
) -> IngestResult | None:
    """One optimistic try: read the group, write this delivery over it; None when another writer got there first."""
    group = await get_group(session, group_id=group_id)
    old_status = group.status  # the UPDATE below refreshes `group` in place
    linked_open, linked_private = await linked(session, group.incident_id)
    # A resolved group starts its new episode clean (its stored alerts are not even read); one that still fires
    # keeps its alerts' state (a partial sender's other alerts, which this delivery does not name, still fire).
    clean = episodes.starts_clean(group=group, note=note, linked_open=linked_open)
    stored = [] if clean else await instances(session, group_id=group_id)
    new_episode = clean or episodes.starts_episode(group=group, note=note, linked_open=linked_open, stored=stored)
    note = without_late_resolves(note, stored)
    existing = {i.fingerprint: i.status for i in stored}
    state = group_state(note, stored)
    incident_id = None if new_episode else group.incident_id
    values = episodes.group_values(
        group, note=note, state=state, proposal=proposal, rule=rule, now=now, new_episode=new_episode
    )
    if not await _write_group(session, group=group, values=values, replay_key=note.replay_key, now=now):
        return None
    if clean:
        await session.exec(delete(AlertInstance).where(col(AlertInstance.group_id) == group_id))
    new_firing, newly_resolved = _changes(note, existing)
    newly_resolved += await _clear_older(session, group_id=group_id, note=note, existing=existing, now=now)
    await _upsert_alerts(session, group_id=group_id, note=note, refired=set(new_firing), now=now)
    if incident_id is not None:
        await _on_incident(
            session,
            incident_id=incident_id,
            group_id=group_id,
            note=note,
            state=state,
            source_name=source_name,
            was_firing=old_status == "firing",
            follow=group.declared_how != "fingerprint",
            new_firing=new_firing,
            newly_resolved=newly_resolved,
            notification=values["notifications"],
            now=now,
        )
    await session.commit()
    return IngestResult(
        group_id=group_id,
        revision=values["revision"],
        incident_id=incident_id,
        incident_private=incident_id is not None and linked_private,
    )


async def _write_group(
    session: AsyncSession, *, group: AlertGroup, values: dict[str, Any], replay_key: str, now: datetime
) -> bool:
    """The group's new values, only over the revision read: False (rolled back) when another writer got there first.
    A delivery that acts once is claimed in the same transaction, so a failed write leaves the sender's retry in;
    `Replayed` (rolled back) when it was claimed before."""
    if replay_key and not await deliveries.claim_alert(session, key=replay_key, at=now):
        raise Replayed(replay_key)
    result = await session.exec(
        update(AlertGroup)
        .where(
            col(AlertGroup.id) == group.id,
            col(AlertGroup.revision) == group.revision,
            # A declare claimed since the read does not bump the revision; it must not be undone.
            col(AlertGroup.declare_state) == group.declare_state,
        )
        .values(**values)
    )
    if result.rowcount != 1:
        await session.rollback()
        return False
    return True


def _changes(note: Notification, existing: dict[str, str]) -> tuple[list[str], list[str]]:
    """The delivery's alerts that fire and were not firing, and those it clears."""
    fired = [a.fingerprint for a in note.alerts if a.status == "firing" and existing.get(a.fingerprint) != "firing"]
    cleared = [a.fingerprint for a in note.alerts if a.status == "resolved" and existing.get(a.fingerprint) == "firing"]
    return fired, cleared


async def _on_incident(
    session: AsyncSession,
    *,
    incident_id: int,
    group_id: int,
    note: Notification,
    state: GroupState,
    source_name: str,
    was_firing: bool,
    follow: bool,
    new_firing: list[str],
    newly_resolved: list[str],
    notification: int,
    now: datetime,
) -> None:
    """The delivery on the linked incident's timeline, and the impact start moved earlier when one of its
    alerts started earlier (Alertmanager's group_wait and group_interval bring late joiners); only on a group
    the incident was declared from (`follow`), not one linked later by a shared fingerprint. A resolve of what
    was resolved already (sent again, or retried after a late answer) tells the incident nothing new."""
    if state.status == "resolved" and not was_firing and not newly_resolved:
        return
    await timeline.add(
        session,
        incident_id=incident_id,
        at=now,
        actor=note.source,
        text=describe_change(
            note, state, source_name=source_name, new_firing=new_firing, newly_resolved=newly_resolved
        ),
        key=state.status == "resolved" and was_firing,
        payload=events.AlertChanged(
            source=note.source,
            group_id=group_id,
            status=state.status,
            new=new_firing,
            resolved=newly_resolved,
            notification=notification,
        ),
    )
    moved = (
        await impact.follow_alerts(session, incident_id=incident_id, alerts=note.alerts, now=now) if follow else None
    )
    if moved is not None:
        await impact.note_move(
            session, incident_id=incident_id, moved=moved, source=note.source, group_id=group_id, now=now
        )


async def _clear_older(
    session: AsyncSession, *, group_id: int, note: Notification, existing: dict[str, str], now: datetime
) -> list[str]:
    """A resolved delivery clears what was stored for it under an older fingerprint (an open Datadog alert
    stored before a monitor's groups were told apart); the ones that were firing."""
    firing = [fp for fp in note.clears if existing.get(fp) == "firing"] if note.status == "resolved" else []
    if firing:
        await session.exec(
            update(AlertInstance)
            .where(col(AlertInstance.group_id) == group_id, col(AlertInstance.fingerprint).in_(firing))
            .values(status="resolved", ends_at=now, last_seen_at=now)
        )
    return firing


async def _upsert_alerts(
    session: AsyncSession, *, group_id: int, note: Notification, refired: set[str], now: datetime
) -> None:
    """Each alert of the delivery, by (group, fingerprint): new ones inserted, known ones brought up to date.
    One firing again after it cleared (`refired`) is news again for the linked incident's channel."""
    for alert in note.alerts:
        again = {"noticed": False} if alert.fingerprint in refired else {}
        statement = upsert_insert(session, AlertInstance).values(
            group_id=group_id,
            fingerprint=alert.fingerprint,
            status=alert.status,
            labels=alert.labels,
            annotations=alert.annotations,
            starts_at=alert.starts_at,
            ends_at=alert.ends_at,
            generator_url=alert.generator_url,
            first_seen_at=now,
            last_seen_at=now,
            noticed=False,
        )
        statement = statement.on_conflict_do_update(
            index_elements=["group_id", "fingerprint"],
            set_={
                "status": alert.status,
                "labels": alert.labels,
                "annotations": alert.annotations,
                "starts_at": _kept_start(statement.excluded, stored_wins=note.starts_per_repeat),
                "ends_at": alert.ends_at,
                "generator_url": alert.generator_url,
                "last_seen_at": now,
                **again,
            },
        )
        await session.exec(statement)


def _kept_start(excluded: Any, *, stored_wins: bool) -> Any:
    """The start an upsert writes over an alert stored as firing that the delivery says still fires: the
    stored one when the sender's start is the time of each notification (`starts_per_repeat`: a reminder
    must not move the start of an alert that never stopped firing later; its card, the late-resolve rule
    and the time to detect read it), else the sender's (Alertmanager's later `startsAt` is a new occurrence
    whose resolve the bot missed); never none over one stored. An alert that cleared takes the delivery's."""
    stored = col(AlertInstance.starts_at)
    still_firing = and_(col(AlertInstance.status) == "firing", excluded.status == "firing")
    kept = func.coalesce(stored, excluded.starts_at) if stored_wins else func.coalesce(excluded.starts_at, stored)
    return case((still_firing, kept), else_=excluded.starts_at)


async def bump(session: AsyncSession, *, group_id: int) -> None:
    """Something Slack shows changed without a delivery (a link, a declare): mark the group pending."""
    await session.exec(
        update(AlertGroup).where(col(AlertGroup.id) == group_id).values(revision=AlertGroup.revision + 1)
    )
    await session.commit()
