"""What one delivery does to its group's row: whether it starts a new episode, and the columns written.

Pure functions on the group as read and the delivery; `service.ingest` writes what they return under its
optimistic revision check, so nothing here touches the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.alerts.models import AlertGroup, AlertInstance, DeclareState
from bot.alerts.payloads import Notification
from bot.alerts.rules import Proposal
from bot.alerts.state import GroupState


def starts_episode(
    *, group: AlertGroup, note: Notification, linked_open: bool, stored: Sequence[AlertInstance]
) -> bool:
    """A resolved group firing again is a new episode, unless its incident is still open. So is a group that
    still fires after its incident was resolved, once an alert new to it fires (or one fires again): joining
    the closed incident, it would page nobody and only be said in that incident's channel."""
    if not _may_start(group=group, note=note, linked_open=linked_open):
        return False
    if group.status == "resolved":
        return True
    return group.incident_id is not None and _fires_anew(note, stored)


def starts_clean(*, group: AlertGroup, note: Notification, linked_open: bool) -> bool:
    """A resolved group firing again: a new episode that starts clean, so its stored alerts need no read."""
    return group.status == "resolved" and _may_start(group=group, note=note, linked_open=linked_open)


def _may_start(*, group: AlertGroup, note: Notification, linked_open: bool) -> bool:
    """Whether this delivery may start a new episode at all: only a firing one, on a group whose incident
    (if any) is over."""
    first = group.notifications == 0 and group.revision == 0
    # Not while a declaration is under way: until it links its incident (after the channel setup,
    # minutes when Slack throttles) the group has none, yet that incident is this episode's.
    return not (first or note.status != "firing" or linked_open or group.declare_state == DeclareState.CLAIMED)


def _fires_anew(note: Notification, stored: Sequence[AlertInstance]) -> bool:
    """An alert of the delivery fires that was not firing in the group (new to it, or cleared before)."""
    firing = {i.fingerprint for i in stored if i.status == "firing"}
    return any(a.status == "firing" and a.fingerprint not in firing for a in note.alerts)


def group_values(
    group: AlertGroup,
    *,
    note: Notification,
    state: GroupState,
    proposal: Proposal,
    rule: str | None,
    now: datetime,
    new_episode: bool,
) -> dict[str, Any]:
    """The group's columns after this delivery (as read in `group`, before the optimistic UPDATE)."""
    incident_id = None if new_episode else group.incident_id
    declare_state = DeclareState.NONE if new_episode else group.declare_state
    wanted = proposal.auto and incident_id is None and declare_state == DeclareState.NONE
    values: dict[str, Any] = {
        "status": state.status,
        "title": note.title(),
        "summary": note.summary[:3000],
        "receiver": note.receiver[:200],
        "group_labels": note.group_labels,
        "common_labels": state.common_labels,
        "common_annotations": note.common_annotations,
        "external_url": note.external_url,
        "truncated": note.truncated,
        "firing_total": state.firing_total,
        "last_seen_at": now,
        "notifications": 1 if new_episode else group.notifications + 1,
        "resolved_at": now if state.status == "resolved" else None,
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
        values.update(episode_reset(wanted=wanted, rule=rule, now=now, episode=group.episode + 1))
    # Being declared (claimed, the incident not yet linked) counts as linked: the link comes after, and
    # the incident it makes is offered the resolve then.
    linked = incident_id is not None or declare_state == DeclareState.CLAIMED
    if state.status == "resolved" and group.status == "firing" and linked:
        values["resolve_offer_pending"] = True
        values["clears"] = group.clears + 1
    elif state.status == "firing":
        values["resolve_offer_pending"] = False
    return values


def episode_reset(*, wanted: bool, rule: str | None, now: datetime, episode: int) -> dict[str, Any]:
    """A new episode starts clean: no incident, no declare, no Slack message of the last one."""
    return {
        "episode": episode,
        "incident_id": None,
        "declare_state": DeclareState.WANTED if wanted else DeclareState.NONE,
        "declared_how": None,
        "declare_claimed_at": None,
        "channel_id": None,
        "message_ts": None,
        "first_seen_at": now,
        "resolve_offer_pending": False,
        "rule": rule,
    }
