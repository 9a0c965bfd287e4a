"""Alert groups in the database: ingest, claims, and the incident link.

Everything two deliveries (or two replicas) can race on is settled by the database:
- the group row: `INSERT ... ON CONFLICT DO NOTHING` on (source, key_hash), then read;
- group changes: `UPDATE ... WHERE revision = :seen` (optimistic; a loser re-reads and retries);
- alerts of a group: `INSERT ... ON CONFLICT (group_id, fingerprint) DO UPDATE`;
- declaring: `UPDATE ... SET declare_state = 'claimed' WHERE declare_state IN (...) AND incident_id IS NULL`,
  so exactly one caller declares;
- showing it in Slack: a lease (`sync_token`) taken with a conditional UPDATE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.payloads import Notification
from bot.alerts.rules import Proposal, describe_rule
from bot.exceptions import NotFound
from bot.incidents.models import Incident, Status
from bot.timeline import events
from bot.timeline import service as timeline

SOURCE_NAMES = {"alertmanager": "Alertmanager", "grafana": "Grafana"}
MAX_OPTIMISTIC_TRIES = 20


def source_name(source: str) -> str:
    return SOURCE_NAMES.get(source, source)


def _insert(session: AsyncSession, model: type[Any]) -> Any:
    bind = session.bind
    name = bind.dialect.name if bind is not None else "sqlite"
    return (postgresql.insert if name == "postgresql" else sqlite.insert)(model)


@dataclass(frozen=True)
class IngestResult:
    """What the webhook answers: the group, the revision this delivery made, and the linked incident."""

    group_id: int
    revision: int
    incident_id: int | None


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


async def _incident_open(session: AsyncSession, incident_id: int | None) -> bool:
    if incident_id is None:
        return False
    result = await session.exec(select(Incident.status).where(Incident.id == incident_id))
    status = result.first()
    return status is not None and status != Status.RESOLVED


def describe_change(note: Notification, *, new_firing: Sequence[str], newly_resolved: Sequence[str]) -> str:
    firing = len(note.firing)
    resolved = len(note.alerts) - firing
    head = f"{source_name(note.source)}: {note.alertname or 'alert'} {note.status}"
    counts = f"{firing} firing" + (f", {resolved} resolved" if resolved else "")
    changes = []
    if new_firing:
        changes.append(f"{len(new_firing)} new")
    if newly_resolved:
        changes.append(f"{len(newly_resolved)} cleared")
    detail = f" ({counts}{'; ' + ', '.join(changes) if changes else ''})"
    summary = f": {note.summary}" if note.summary else ""
    return (head + detail + summary)[:2000]


async def ingest(session: AsyncSession, *, note: Notification, proposal: Proposal, now: datetime) -> IngestResult:
    """Store one delivery; the caller answers the webhook only after this returns."""
    key_hash = note.key_hash
    await session.exec(  # type: ignore[call-overload]
        _insert(session, AlertGroup)
        .values(
            source=note.source,
            key_hash=key_hash,
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
            group_labels={},
            common_labels={},
            common_annotations={},
            summary="",
        )
        .on_conflict_do_nothing(index_elements=["source", "key_hash"])
    )
    await session.commit()
    row = await session.exec(
        select(AlertGroup.id).where(AlertGroup.source == note.source, AlertGroup.key_hash == key_hash)
    )
    group_id = int(row.one() or 0)
    rule = describe_rule(proposal.rule)[:300] if proposal.rule is not None else None

    for _ in range(MAX_OPTIMISTIC_TRIES):
        group = await get_group(session, group_id=group_id)
        old_status = group.status  # the UPDATE below refreshes `group` in place
        linked_open = await _incident_open(session, group.incident_id)
        first = group.notifications == 0 and group.revision == 0
        # Not while a declaration is under way: until it links its incident (after the channel setup,
        # minutes when Slack throttles) the group has none, yet that incident is this episode's.
        new_episode = (
            not first
            and group.status == "resolved"
            and note.status == "firing"
            and not linked_open
            and group.declare_state != DeclareState.CLAIMED
        )
        existing = {} if new_episode else {i.fingerprint: i.status for i in await instances(session, group_id=group_id)}
        incident_id = None if new_episode else group.incident_id
        declare_state = DeclareState.NONE if new_episode else group.declare_state
        wanted = proposal.auto and incident_id is None and declare_state == DeclareState.NONE
        values: dict[str, Any] = {
            "status": note.status,
            "title": note.title(),
            "summary": note.summary[:3000],
            "receiver": note.receiver[:200],
            "group_labels": note.group_labels,
            "common_labels": note.common_labels,
            "common_annotations": note.common_annotations,
            "external_url": note.external_url,
            "truncated": note.truncated,
            "firing_total": note.firing_total,
            "last_seen_at": now,
            "notifications": 1 if new_episode else group.notifications + 1,
            "resolved_at": now if note.status == "resolved" else None,
            "proposed_severity": proposal.severity.value,
            "proposed_service": proposal.service,
            "proposed_playbook": proposal.playbook,
            "revision": group.revision + 1,
        }
        if rule is not None:
            values["rule"] = rule
        if wanted:
            values["declare_state"] = DeclareState.WANTED
        if new_episode:
            values.update(
                episode=group.episode + 1,
                incident_id=None,
                declare_state=DeclareState.WANTED if wanted else DeclareState.NONE,
                declared_how=None,
                declare_claimed_at=None,
                channel_id=None,
                message_ts=None,
                first_seen_at=now,
                resolve_offer_pending=False,
                rule=rule,
            )
        if note.status == "resolved" and group.status == "firing" and incident_id is not None:
            values["resolve_offer_pending"] = True
        elif note.status == "firing":
            values["resolve_offer_pending"] = False
        result = await session.exec(  # type: ignore[call-overload]
            update(AlertGroup)
            .where(
                col(AlertGroup.id) == group_id,
                col(AlertGroup.revision) == group.revision,
                # A declare claimed since the read does not bump the revision; it must not be undone.
                col(AlertGroup.declare_state) == group.declare_state,
            )
            .values(**values)
        )
        if result.rowcount != 1:
            await session.rollback()
            continue
        if new_episode:
            await session.exec(delete(AlertInstance).where(col(AlertInstance.group_id) == group_id))  # type: ignore[call-overload]
        new_firing = [
            a.fingerprint for a in note.alerts if a.status == "firing" and existing.get(a.fingerprint) != "firing"
        ]
        newly_resolved = [
            a.fingerprint for a in note.alerts if a.status == "resolved" and existing.get(a.fingerprint) == "firing"
        ]
        for alert in note.alerts:
            statement = _insert(session, AlertInstance).values(
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
                    "starts_at": alert.starts_at,
                    "ends_at": alert.ends_at,
                    "generator_url": alert.generator_url,
                    "last_seen_at": now,
                },
            )
            await session.exec(statement)  # type: ignore[call-overload]
        if incident_id is not None:
            timeline.add(
                session,
                incident_id=incident_id,
                at=now,
                actor=note.source,
                text=describe_change(note, new_firing=new_firing, newly_resolved=newly_resolved),
                key=note.status == "resolved" and old_status == "firing",
                payload=events.AlertChanged(
                    source=note.source,
                    group_id=group_id,
                    status=note.status,
                    new=new_firing,
                    resolved=newly_resolved,
                    notification=values["notifications"],
                ),
            )
        await session.commit()
        return IngestResult(group_id=group_id, revision=values["revision"], incident_id=incident_id)
    raise RuntimeError(f"alert group {group_id}: too many concurrent updates, giving up (the sender will retry)")


async def bump(session: AsyncSession, *, group_id: int) -> None:
    """Something Slack shows changed without a delivery (a link, a declare): mark the group pending."""
    await session.exec(  # type: ignore[call-overload]
        update(AlertGroup).where(col(AlertGroup.id) == group_id).values(revision=AlertGroup.revision + 1)
    )
    await session.commit()


# --- declaring ---------------------------------------------------------------------------------------


async def claim_declare(
    session: AsyncSession, *, group_id: int, states: Sequence[str], now: datetime, stale_before: datetime | None = None
) -> bool:
    """Exactly one caller wins the right to declare for this group (and episode)."""
    condition: Any = col(AlertGroup.declare_state).in_(list(states))
    if stale_before is not None:
        condition = or_(
            condition,
            (col(AlertGroup.declare_state) == DeclareState.CLAIMED)
            & (col(AlertGroup.declare_claimed_at) < stale_before),
        )
    result = await session.exec(  # type: ignore[call-overload]
        update(AlertGroup)
        .where(col(AlertGroup.id) == group_id, col(AlertGroup.incident_id).is_(None), condition)
        .values(declare_state=DeclareState.CLAIMED, declare_claimed_at=now)
    )
    await session.commit()
    return bool(result.rowcount)


async def release_declare(session: AsyncSession, *, group_id: int, back_to: str) -> None:
    await session.exec(  # type: ignore[call-overload]
        update(AlertGroup)
        .where(col(AlertGroup.id) == group_id, col(AlertGroup.declare_state) == DeclareState.CLAIMED)
        .values(declare_state=back_to, declare_claimed_at=None)
    )
    await session.commit()


async def link_incident(
    session: AsyncSession, *, group_id: int, incident_id: int, how: str, actor: str | None, now: datetime
) -> AlertGroup:
    """Tie the group to an incident and put what the alert says on the incident's timeline."""
    await session.exec(  # type: ignore[call-overload]
        update(AlertGroup)
        .where(col(AlertGroup.id) == group_id)
        .values(
            incident_id=incident_id,
            declare_state=DeclareState.DONE,
            declared_how=how,
            revision=AlertGroup.revision + 1,
        )
    )
    await session.exec(  # type: ignore[call-overload]
        update(AlertInstance).where(col(AlertInstance.group_id) == group_id).values(noticed=True)
    )
    group = await get_group(session, group_id=group_id)
    alerts = await instances(session, group_id=group_id)
    firing = [a for a in alerts if a.status == "firing"]
    names = sorted({a.labels.get("alertname", "alert") for a in alerts})
    impact = (
        await _impact_from_alerts(session, incident_id=incident_id, alerts=alerts) if how != "fingerprint" else None
    )
    verb = {"auto": "declared automatically from", "button": "declared from", "fingerprint": "linked to"}.get(
        how, "linked to"
    )
    text = f"{verb} {source_name(group.source)} alert {', '.join(names[:5])} ({len(firing)} firing)"
    if group.summary:
        text += f": {group.summary}"
    timeline.add(
        session,
        incident_id=incident_id,
        at=now,
        actor=actor or group.source,
        text=text[:2000],
        key=True,
        payload=events.AlertChanged(
            source=group.source,
            group_id=group_id,
            group_key=group.group_key[:500],
            how=how,
            rule=group.rule,
            labels=group.common_labels,
            fingerprints=[a.fingerprint for a in alerts][:50],
            impact_started_at=impact,
        ),
    )
    await session.commit()
    return group


async def _impact_from_alerts(
    session: AsyncSession, *, incident_id: int, alerts: Sequence[AlertInstance]
) -> datetime | None:
    """An incident declared from alerts started hurting when its earliest alert started, if before the declare.

    Only while nobody has set it (`/incident started` wins), and only ever earlier than the declaration.
    """
    starts = [a.starts_at for a in alerts if a.starts_at is not None]
    if not starts:
        return None
    earliest = min(starts)
    result = await session.exec(  # type: ignore[call-overload]
        update(Incident)
        .where(
            col(Incident.id) == incident_id,
            col(Incident.impact_started_at).is_(None),
            col(Incident.declared_at) > earliest,
        )
        .values(impact_started_at=earliest)
    )
    return earliest if result.rowcount else None


async def incident_for_fingerprints(session: AsyncSession, *, group_id: int, fingerprints: Sequence[str]) -> int | None:
    """An open incident another group already tracks for one of these firing alerts (same fingerprint)."""
    if not fingerprints:
        return None
    result = await session.exec(
        select(AlertGroup.incident_id)
        .join(AlertInstance, col(AlertInstance.group_id) == col(AlertGroup.id))
        .join(Incident, col(Incident.id) == col(AlertGroup.incident_id))
        .where(
            col(AlertGroup.id) != group_id,
            col(AlertInstance.fingerprint).in_(list(fingerprints)),
            col(AlertInstance.status) == "firing",
            col(Incident.status) != Status.RESOLVED,
        )
        .order_by(col(AlertGroup.incident_id))
        .limit(1)
    )
    return result.first()


async def groups_for_incident(session: AsyncSession, *, incident_id: int) -> list[AlertGroup]:
    result = await session.exec(select(AlertGroup).where(AlertGroup.incident_id == incident_id))
    return list(result.all())


async def bump_for_incident(session: AsyncSession, *, incident_id: int) -> list[int]:
    """The linked incident changed: mark all its groups pending (one UPDATE); their ids."""
    await session.exec(  # type: ignore[call-overload]
        update(AlertGroup).where(col(AlertGroup.incident_id) == incident_id).values(revision=AlertGroup.revision + 1)
    )
    await session.commit()
    result = await session.exec(select(AlertGroup.id).where(AlertGroup.incident_id == incident_id))
    return [int(i) for i in result.all() if i is not None]


async def mark_noticed(session: AsyncSession, *, group_id: int, fingerprints: Sequence[str]) -> None:
    if not fingerprints:
        return
    await session.exec(  # type: ignore[call-overload]
        update(AlertInstance)
        .where(col(AlertInstance.group_id) == group_id, col(AlertInstance.fingerprint).in_(list(fingerprints)))
        .values(noticed=True)
    )
    await session.commit()


async def clear_resolve_offer(session: AsyncSession, *, group_id: int, resolved_at: datetime | None) -> None:
    """The offer about the resolution at `resolved_at` is posted. If the alert fired and cleared again
    while it was on its way, that newer resolution's offer stays pending for the next sync."""
    same = col(AlertGroup.resolved_at).is_not_distinct_from(resolved_at)
    await session.exec(  # type: ignore[call-overload]
        update(AlertGroup).where(col(AlertGroup.id) == group_id, same).values(resolve_offer_pending=False)
    )
    await session.commit()


# --- showing it in Slack: the lease ------------------------------------------------------------------


async def claim_sync(
    session: AsyncSession, *, group_id: int, token: str, now: datetime, stale_before: datetime
) -> bool:
    result = await session.exec(  # type: ignore[call-overload]
        update(AlertGroup)
        .where(
            col(AlertGroup.id) == group_id,
            or_(col(AlertGroup.sync_token).is_(None), col(AlertGroup.sync_claimed_at) < stale_before),
        )
        .values(sync_token=token, sync_claimed_at=now)
    )
    await session.commit()
    return bool(result.rowcount)


async def _under_lease(session: AsyncSession, *, group_id: int, token: str, **values: Any) -> None:
    """Change the group only while this sync still holds its lease."""
    await session.exec(  # type: ignore[call-overload]
        update(AlertGroup).where(col(AlertGroup.id) == group_id, col(AlertGroup.sync_token) == token).values(**values)
    )
    await session.commit()


async def save_message(session: AsyncSession, *, group_id: int, token: str, channel_id: str, message_ts: str) -> None:
    """Keep the ts at once, so a failure later in the same sync never posts the message twice."""
    await _under_lease(session, group_id=group_id, token=token, channel_id=channel_id, message_ts=message_ts)


async def finish_sync(session: AsyncSession, *, group_id: int, token: str, revision: int) -> bool:
    """Record what Slack now shows and release the lease; True when nothing newer is waiting."""
    await _under_lease(
        session,
        group_id=group_id,
        token=token,
        synced_revision=revision,
        sync_token=None,
        sync_claimed_at=None,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
    )
    group = await get_group(session, group_id=group_id)
    return not group.pending


async def fail_sync(session: AsyncSession, *, group_id: int, token: str, error: str, next_attempt_at: datetime) -> None:
    await _under_lease(
        session,
        group_id=group_id,
        token=token,
        sync_token=None,
        sync_claimed_at=None,
        attempts=AlertGroup.attempts + 1,
        next_attempt_at=next_attempt_at,
        last_error=error[:500],
    )


async def pending_ids(
    session: AsyncSession, *, now: datetime, stale_before: datetime, limit: int = 50, due_only: bool = True
) -> list[int]:
    query = select(AlertGroup.id).where(
        col(AlertGroup.synced_revision) < col(AlertGroup.revision),
        or_(col(AlertGroup.sync_token).is_(None), col(AlertGroup.sync_claimed_at) < stale_before),
    )
    if due_only:
        query = query.where(or_(col(AlertGroup.next_attempt_at).is_(None), col(AlertGroup.next_attempt_at) <= now))
    result = await session.exec(query.order_by(col(AlertGroup.id)).limit(limit))
    return [int(i) for i in result.all() if i is not None]


async def pending_count(session: AsyncSession) -> int:
    result = await session.exec(
        select(func.count()).select_from(AlertGroup).where(col(AlertGroup.synced_revision) < col(AlertGroup.revision))
    )
    return int(result.one())


async def stale_declares(session: AsyncSession, *, stale_before: datetime) -> list[int]:
    """Groups whose declare was claimed long ago and never linked (the bot died mid-declare)."""
    result = await session.exec(
        select(AlertGroup.id).where(
            col(AlertGroup.declare_state) == DeclareState.CLAIMED,
            col(AlertGroup.incident_id).is_(None),
            col(AlertGroup.declare_claimed_at) < stale_before,
        )
    )
    return [int(i) for i in result.all() if i is not None]
