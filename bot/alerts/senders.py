"""Which stored group a delivery of a named sender writes to, when it may not be the one its own key names.

A group is its sender's (`payloads.sender_of` its `externalURL`), with two exceptions:
- a group stored by an earlier version under the key without its sender (`former_key_hash`) that is still
  open keeps taking the deliveries of the sender that last wrote it, so its resolve reaches it;
- the replicas of one highly available Alertmanager left without a shared `--web.external-url` each name
  themselves by their own pod (Alertmanager's default is built from the host name), yet send the same
  alerts: a delivery whose alerts (fingerprints) an open group of the same key at another sender already
  holds joins that group. Independent clusters label their alerts apart, so their fingerprints never meet;
  an HA pair's always do. Grafana's replicas share their root URL unless told otherwise (its default is not
  the host's), and two Grafana instances may well send the same labels, so theirs stay apart.
Two replicas' first deliveries at the same instant still make two groups (neither holds an alert yet):
Alertmanager staggers its replicas' sends, so only a pair that lost its gossip does that.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.alerts.models import AlertGroup, AlertInstance
from bot.alerts.payloads import Notification, sender_of
from bot.incidents.models import Incident, Status


@dataclass(frozen=True)
class _Group:
    """The columns of a stored group that decide whether a delivery writes to it."""

    id: int
    key_hash: str
    external_url: str | None
    status: str
    incident_id: int | None


# Any: sqlmodel types `select` of up to four columns only.
_COLUMNS: Any = (AlertGroup.id, AlertGroup.key_hash, AlertGroup.external_url, AlertGroup.status, AlertGroup.incident_id)


async def linked(session: AsyncSession, incident_id: int | None) -> tuple[bool, bool]:
    """Whether the linked incident is open, and whether it is private (one read for both)."""
    if incident_id is None:
        return False, False
    row = (await session.exec(select(Incident.status, Incident.private).where(Incident.id == incident_id))).first()
    if row is None:
        return False, False
    return row[0] != Status.RESOLVED, bool(row[1])


async def _open(session: AsyncSession, group: _Group) -> bool:
    """Firing, or its incident is open: a delivery of it still belongs to it."""
    return group.status == "firing" or (await linked(session, group.incident_id))[0]


async def stored_group(session: AsyncSession, *, note: Notification) -> int | None:
    """The group this delivery writes to when that may not be its own key's; None: the row is made (or read)
    by key. In order: its own group while open; another replica's open group holding its alerts; its own;
    the former group, while open and not written last by another sender (stored before senders were told
    apart, it is that sender's)."""
    if note.former_key_hash is None:
        return None
    rows = await session.exec(
        select(*_COLUMNS).where(
            AlertGroup.source == note.source,
            col(AlertGroup.key_hash).in_([note.key_hash, note.former_key_hash]),
        )
    )
    found = {group.key_hash: group for group in (_Group(*row) for row in rows.all())}
    own, former = found.get(note.key_hash), found.get(note.former_key_hash)
    if own is not None and await _open(session, own):
        return own.id
    held = await _held(session, note=note) if note.sender and note.source == "alertmanager" else None
    if held is not None:
        return held
    if own is not None:
        return own.id
    if former is None or (note.sender and sender_of(former.external_url) not in ("", note.sender)):
        return None
    return former.id if await _open(session, former) else None


async def _held(session: AsyncSession, *, note: Notification) -> int | None:
    """An open group of this delivery's key at another sender (or stored without one) that holds one of its
    alerts: the firing one first, then the newest."""
    fingerprints = [alert.fingerprint for alert in note.alerts]
    holders = select(AlertInstance.group_id).where(col(AlertInstance.fingerprint).in_(fingerprints))
    rows = await session.exec(
        select(*_COLUMNS).where(
            AlertGroup.source == note.source,
            AlertGroup.group_key == note.group_key,
            col(AlertGroup.key_hash) != note.key_hash,
            or_(col(AlertGroup.status) == "firing", col(AlertGroup.incident_id).is_not(None)),
            col(AlertGroup.id).in_(holders),
        )
    )
    for group in sorted((_Group(*row) for row in rows.all()), key=lambda g: (g.status != "firing", -g.id)):
        if await _open(session, group):
            return group.id
    return None
