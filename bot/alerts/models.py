"""Tables of the alerts domain.

`AlertGroup` is one Alertmanager/Grafana notification group (its `groupKey` within its sender, the
`externalURL` it names itself with: independent senders with the same routes send the same key), unique
per source: two deliveries of the same group, even at the same instant on two replicas, land on one row,
so they can never make two incidents. `AlertInstance` is one alert of the group (its `fingerprint`).

The row is written before the webhook is answered; showing it in Slack happens afterwards and is
tracked by `revision` (bumped by every change) and `synced_revision` (what Slack shows). A row
with `synced_revision < revision` is pending: the retry sweep posts it when Slack is back.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import JSON, Column, Index, Text
from sqlmodel import Field, SQLModel

from bot.db import UTCDateTime


def _when(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class DeclareState(StrEnum):
    NONE = ""  # nobody asked for an incident
    WANTED = "wanted"  # an auto_declare rule matched; the processor will declare
    CLAIMED = "claimed"  # someone (processor or a person) is declaring right now
    DONE = "done"  # incident_id is set


class AlertGroup(SQLModel, table=True):
    __tablename__ = "alert_groups"
    __table_args__ = (
        Index("ux_alert_groups_source_key", "source", "key_hash", unique=True),
        Index("ix_alert_groups_incident", "incident_id"),
    )

    id: int | None = Field(default=None, primary_key=True)
    source: str = Field(max_length=20)  # alertmanager | grafana
    key_hash: str = Field(max_length=64)  # sha256 of groupKey and its sender (`Notification.key_hash`)
    group_key: str = Field(sa_column=Column(Text, nullable=False))
    receiver: str = Field(default="", max_length=200)
    status: str = Field(default="firing", max_length=10)  # firing | resolved
    title: str = Field(default="", max_length=300)
    summary: str = Field(default="", sa_column=Column(Text, nullable=False))
    group_labels: dict[str, str] = _json()
    common_labels: dict[str, str] = _json()
    common_annotations: dict[str, str] = _json()
    external_url: str | None = None
    truncated: int = 0  # alerts of the last delivery not kept in full (the sender's and ours)
    firing_total: int = 0  # firing alerts in the last delivery, the ones not kept included
    episode: int = 1  # bumped when a resolved group fires again after its incident was resolved
    notifications: int = 0  # deliveries in this episode
    first_seen_at: datetime = _when(nullable=False)
    last_seen_at: datetime = _when(nullable=False)
    resolved_at: datetime | None = _when()

    # What a Declare would propose (from labels, the services in bot.yml and the playbooks' rules).
    proposed_severity: str | None = Field(default=None, max_length=4)
    proposed_service: str | None = Field(default=None, max_length=100)
    proposed_playbook: str | None = Field(default=None, max_length=100)
    rule: str | None = Field(default=None, max_length=300)  # the auto_declare rule that matched, as text

    incident_id: int | None = Field(default=None, foreign_key="incidents.id")
    declare_state: str = Field(default=DeclareState.NONE, max_length=10)
    declare_claimed_at: datetime | None = _when()
    declared_how: str | None = Field(default=None, max_length=20)  # auto | button | fingerprint
    resolve_offer_pending: bool = False  # the group resolved while linked: offer to resolve the incident
    clears: int = 0  # times it resolved while linked; their sum over an incident's groups names its all-clear

    # Slack side.
    channel_id: str | None = None
    message_ts: str | None = None
    revision: int = 1
    synced_revision: int = 0
    sync_token: str | None = Field(default=None, max_length=32)
    sync_claimed_at: datetime | None = _when()
    attempts: int = 0
    next_attempt_at: datetime | None = _when()
    last_error: str | None = None

    @property
    def pending(self) -> bool:
        return self.synced_revision < self.revision


class AlertInstance(SQLModel, table=True):
    __tablename__ = "alert_instances"
    __table_args__ = (
        Index("ux_alert_instances_group_fp", "group_id", "fingerprint", unique=True),
        Index("ix_alert_instances_fp", "fingerprint"),
    )

    id: int | None = Field(default=None, primary_key=True)
    group_id: int = Field(foreign_key="alert_groups.id")
    fingerprint: str = Field(max_length=64)
    status: str = Field(default="firing", max_length=10)
    labels: dict[str, str] = _json()
    annotations: dict[str, str] = _json()
    starts_at: datetime | None = _when()
    ends_at: datetime | None = _when()
    generator_url: str | None = None
    first_seen_at: datetime = _when(nullable=False)
    last_seen_at: datetime = _when(nullable=False)
    noticed: bool = False  # told the linked incident's channel about it


class AlertResolveOffer(SQLModel, table=True):
    """The incident's offer to resolve once its alerts cleared, claimed by one sync before it is posted.

    `offered_through` is the sum of the groups' `clears` the last offer covered: two syncs that read the
    same all-clear try to claim the same sum and only one can; a group clearing again makes a larger one.
    """

    __tablename__ = "alert_resolve_offers"

    incident_id: int = Field(primary_key=True, foreign_key="incidents.id")
    offered_through: int = 0
    claimed_by: int | None = None  # the alert group whose sync posts it
    claimed_at: datetime | None = _when()
