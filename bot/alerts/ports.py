"""What the alert flows need from a chat platform (Slack implements it in bot/slack/adapters/alerts.py).

The flows hand over an `AlertView`, a plain snapshot of the group, its alerts and its incident;
the adapter decides how it looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from bot.incidents.models import Incident


@dataclass(frozen=True)
class AlertLine:
    fingerprint: str
    status: str
    name: str
    labels: dict[str, str]
    summary: str
    starts_at: datetime | None
    generator_url: str | None


@dataclass(frozen=True)
class IncidentLink:
    number: int
    ref: str
    channel_id: str | None
    status: str
    severity: str
    how: str | None  # auto | button | fingerprint
    setup_error: str | None = None
    private: bool = False  # the card sits in the alerts channel: a private incident is not named there


@dataclass(frozen=True)
class AlertView:
    group_id: int
    source: str
    source_name: str
    status: str
    title: str
    summary: str
    description: str
    common_labels: dict[str, str]
    group_key: str
    notifications: int
    truncated: int
    first_seen_at: datetime
    last_seen_at: datetime
    external_url: str | None
    proposed_severity: str
    proposed_service: str | None
    proposed_playbook: str | None
    rule: str | None
    declaring: bool
    alerts: list[AlertLine] = field(default_factory=list)
    incident: IncidentLink | None = None
    firing_total: int = 0  # in the last delivery, beyond the alerts kept in full too

    @property
    def firing(self) -> list[AlertLine]:
        return [a for a in self.alerts if a.status == "firing"]

    @property
    def firing_count(self) -> int:
        """How many alerts fire: the delivery's count (rows stored before it was kept say 0)."""
        return max(self.firing_total, len(self.firing))


class AlertChat(Protocol):
    async def post_alert(self, *, channel: str, view: AlertView) -> tuple[str, str]:
        """Post the alert message; returns (channel id, message ts)."""
        ...

    async def find_alert(self, *, channel: str, group_id: int, since: datetime) -> tuple[str, str] | None:
        """The group's card posted since `since` by an earlier sync that could not save it: (channel id, ts)."""
        ...

    async def update_alert(self, *, channel: str, ts: str, view: AlertView) -> None: ...

    async def notify_incident(
        self,
        *,
        incident: Incident,
        view: AlertView,
        new_alerts: list[AlertLine],
        offer_resolve: bool,
        still_firing: Sequence[str] = (),
        offer_through: int = 0,
        also_cleared: Sequence[str] = (),
    ) -> None:
        """Tell the incident channel that alerts of its group fired or cleared: with a Resolve button once
        every alert group of the incident has cleared (marked with `offer_through`, the all-clear it
        covers, and naming `also_cleared`, the other groups that cleared with it), else naming the groups
        that still fire."""
        ...

    async def resolve_offer_posted(self, *, incident: Incident, through: int, since: datetime) -> bool:
        """Whether an offer to resolve marked with `through` was posted in the incident's channel since
        `since` (by a sync that died before recording it)."""
        ...
