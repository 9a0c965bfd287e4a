"""Typed timeline payloads: one small class per event kind, the contract between writers and readers.

A writer builds the payload and `timeline.add(..., payload=events.SeverityChanged(old=..., new=...))`
stores it; the event's kind comes from the payload's class, so a kind cannot be paired with the wrong
data. A reader gets it back with `events.read(event)` (or `events.parse(kind, data)`).

The field names are the keys rows have always had, so rows written before these types existed parse
as they are: unknown keys are ignored, a missing optional key takes its default. An optional field
left at None is not stored, so a payload stores what the old dicts stored for the same facts.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from bot.timeline.models import Kind, TimelineEvent

log = logging.getLogger(__name__)

P = TypeVar("P", bound="Payload")

# Every payload type by its kind, filled as each is declared (`Payload.__pydantic_init_subclass__`).
PAYLOADS: dict[str, type[Payload]] = {}


class Payload(BaseModel):
    """The `data` of one kind of event. Subclasses set `KIND`, and are registered for it as they are declared."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)

    KIND: ClassVar[str]

    @classmethod
    def __pydantic_init_subclass__(cls, **kwargs: Any) -> None:
        """Registers the type for its kind: `parse` finds it there, and two types for one kind are refused."""
        super().__pydantic_init_subclass__(**kwargs)
        if str(cls.KIND) in PAYLOADS:
            raise TypeError(f"two payload types for the timeline kind {cls.KIND!r}")
        PAYLOADS[str(cls.KIND)] = cls

    def to_data(self) -> dict[str, Any]:
        """The JSON the row stores: the old keys, optional fields left unset are not written."""
        data = self.model_dump(mode="json", by_alias=True)
        optional = {f.alias or name for name, f in type(self).model_fields.items() if f.default is None}
        return {key: value for key, value in data.items() if value is not None or key not in optional}


class Declared(Payload):
    KIND = Kind.DECLARED
    severity: str
    service: str | None = None
    playbook: str | None = None


class StatusChanged(Payload):
    """A status update; `old == new` when someone re-stated the status."""

    KIND = Kind.STATUS
    old: str
    new: str


class SeverityChanged(Payload):
    KIND = Kind.SEVERITY
    old: str
    new: str


class RoleAssigned(Payload):
    KIND = Kind.ROLE
    role: str
    user: str
    previous: str | None = None


class Acknowledged(Payload):
    KIND = Kind.ACK
    first: bool = True
    for_whom: list[str] | None = Field(default=None, alias="for")  # the people paged, acknowledged by another


class Resolved(Payload):
    KIND = Kind.RESOLVED


class NoteAdded(Payload):
    KIND = Kind.NOTE


class MessagePosted(Payload):
    KIND = Kind.MESSAGE
    changed: str | None = None  # the Slack ts of the last edit or deletion applied: an older one is dropped


class ActionItemChanged(Payload):
    """A follow-up added (`owner`), its issue created (`issue_url`, `issue_key`), closed or reopened there
    (`done` true or false), or gone from the tracker (`gone`: deleted or moved out of reach, link dropped)."""

    KIND = Kind.ACTION_ITEM
    owner: str | None = None
    item_id: int | None = None
    issue_url: str | None = None
    issue_key: str | None = None
    done: bool | None = None
    gone: bool | None = None
    via: str | None = None


class FollowupStatus(Payload):
    """A follow-up marked done or reopened by a person."""

    KIND = Kind.FOLLOWUP_STATUS
    item_id: int
    done: bool
    via: str | None = None


class ChatError(Payload):
    KIND = Kind.CHAT_ERROR
    step: str | None = None
    code: str | None = None


class Setup(Payload):
    """A step of the channel's setup (or archive) that is worth a line: adopted, resumed, archived."""

    KIND = Kind.SETUP
    step: str | None = None
    channel_id: str | None = None
    ts: str | None = None
    problems: list[str] | None = None
    sent_to: list[str] | None = None  # who heard of a person's archive: a person or a channel; [] nobody


class UnfinishedWork(Payload):
    """A signal's handlers failed (`failed`: what they do), or archiving the channel did (`signal`
    "archive", bot/archive/giveup.py); retried at `retry_at`, or given up when None (or dropped:
    channel-ready work whose incident was resolved before its retry)."""

    KIND = Kind.UNFINISHED_WORK
    signal: str
    failed: list[str]
    attempt: int
    retry_at: datetime | None = None


class Impact(Payload):
    """`/incident started`: the impact start corrected."""

    KIND = Kind.IMPACT
    impact_started_at: datetime
    previous: datetime | None = None


class PageEvent(Payload):
    """Escalation: a page `sent`, pages `cancelled`, or the plan `replanned` after a severity change."""

    KIND = Kind.PAGE
    action: str = "sent"
    page_id: int | None = None
    level: int | None = None
    name: str | None = None
    repeat: int | None = None
    sent_to: list[str] | None = None
    failed: dict[str, str] | None = None  # user -> Slack error
    late: bool | None = None
    late_seconds: float | None = None
    errors: list[str] | None = None
    via: list[str] | None = None  # another service that took the page: "PagerDuty"
    noted: dict[str, int] | None = None  # of sent_to, told it escalated (paged at an earlier level) -> that level
    levels: list[int] | None = None  # cancelled
    reason: str | None = None
    added: list[int] | None = None  # replanned
    restored: list[int] | None = None


class ReminderSent(Payload):
    """A reminder posted: escalation's `status_update` / `postmortem`, the status page's `public_update`."""

    KIND = Kind.REMINDER
    reminder_id: int | None = None
    kind: str | None = None
    seq: int | None = None
    sent_to: list[str] | None = None
    late: bool | None = None
    late_seconds: float | None = None


class PlaybookChanged(Payload):
    """A playbook run `started`, `switched` away from, or `completed`."""

    KIND = Kind.PLAYBOOK
    status: str
    run_id: int | None = None
    playbook_id: str | None = None
    title: str | None = None
    reason: str | None = None
    switched_from: str | None = None
    steps: int | None = None
    to: str | None = None
    done: int | None = None
    skipped: int | None = None


class PlaybookStepChanged(Payload):
    """A step done, skipped or reopened (`status`), or its action's result (`"<action> succeeded"`, `output`)."""

    KIND = Kind.PLAYBOOK_STEP
    status: str
    run_id: int | None = None
    playbook_id: str | None = None
    step_id: str | None = None
    step_title: str | None = None
    required: bool | None = None
    reason: str | None = None
    action: str | None = None
    ok: bool | None = None
    output: str | None = None


class HealthCheck(BaseModel):
    """One service's health as the timeline keeps it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    service: str
    state: str
    http_status: int | None = None
    latency_ms: float | None = None
    reason: str = ""
    failing: list[str] = []


class HealthChecked(Payload):
    KIND = Kind.HEALTH
    results: list[HealthCheck] = []
    overall: str | None = None
    service: str | None = None  # not written today; rows that have it name a service the post-mortem lists


# `Deployed.health` of a deploy whose service has no health_url: nothing re-checked it after.
HEALTH_UNCHECKED = "not checked"


class Deployed(Payload):
    """A restart, rollback or redeploy: `started`, then its outcome."""

    KIND = Kind.DEPLOY
    action: str
    service: str
    outcome: str
    platform: str | None = None
    from_deployment: str | None = Field(default=None, alias="from")
    to: str | None = None  # whose build goes live: a rollback's target, a restart's redeploy (nothing was live)
    deployment: str | None = None  # what the platform made or restarted, followed to its outcome
    durations: dict[str, float] | None = None  # phase -> seconds
    health: str | None = None  # the re-check's state after it, or HEALTH_UNCHECKED (no health_url); None: older rows
    unknown: bool | None = None  # failed without a final answer (timed out, lost track): may still be under way

    @property
    def result(self) -> str:
        """The outcome as read: a deploy after which the service is still unhealthy did not succeed at
        fixing anything, and one whose health could not be read is not known to have; each says so (as
        its Slack report did)."""
        if self.outcome == "failed" and self.unknown:
            return "outcome unknown"
        if self.outcome == "succeeded" and self.health == "unknown":
            return "deployed, health unknown"
        if self.outcome == "succeeded" and self.health == HEALTH_UNCHECKED:
            return "deployed, health not checked"
        if self.outcome == "succeeded" and self.health not in (None, "healthy"):
            return f"deployed, but still {self.health}"
        return self.outcome


class AlertChanged(Payload):
    """An alert group's delivery on a linked incident (`status`, `new`, `resolved`), the link itself (`how`),
    or the impact start moved earlier by its alerts (`impact_started_at`, from `impact_previous`: None when
    it was the declaration; bot.incidents.impact.follow_alerts)."""

    KIND = Kind.ALERT
    source: str | None = None
    group_id: int | None = None
    status: str | None = None
    new: list[str] | None = None  # fingerprints newly firing
    resolved: list[str] | None = None
    notification: int | None = None
    group_key: str | None = None
    how: str | None = None  # auto | button | fingerprint
    rule: str | None = None
    labels: dict[str, str] | None = None
    fingerprints: list[str] | None = None
    impact_started_at: datetime | None = None
    impact_previous: datetime | None = None
    service: str | None = None  # not written today; rows that have it name a service the post-mortem lists


class PostmortemEvent(Payload):
    """A draft shared (`file_id`...), a section edited (`section`...), or the post-mortem marked finished."""

    KIND = Kind.POSTMORTEM
    finished: bool = False
    pending: bool | None = None  # a draft's line, until its outcome is known; None on rows from before it
    file_id: str | None = None
    filename: str | None = None
    format: str | None = None
    bytes: int | None = None
    trigger: str | None = None
    events: int | None = None
    section: str | None = None
    chars: int | None = None
    via: str | None = None


class PublicUpdatePublished(Payload):
    """A public update published; `change` "edited" (its message corrected, `previous` the old text) or
    "withdrawn" (the whole public incident taken off the page; `previous` the last message it showed)."""

    KIND = Kind.PUBLIC_UPDATE
    update_id: int
    title: str
    status: str
    impact: str
    components: list[str] = []
    change: str | None = None
    previous: str | None = None


class StatuspageSyncEvent(Payload):
    """The status page sync failed (`status`: the HTTP status), or caught up again (no data)."""

    KIND = Kind.STATUSPAGE
    update_id: int | None = None
    status: int | None = None


class UnknownKind(ValueError):
    """A kind no payload type is declared for."""


def payload_type(kind: str) -> type[Payload]:
    try:
        return PAYLOADS[str(kind)]
    except KeyError:
        raise UnknownKind(f"no payload type for the timeline kind {kind!r}") from None


def parse(kind: str, data: Mapping[str, Any] | None) -> Payload:
    """The typed payload of a row's `data`; raises UnknownKind or pydantic's ValidationError."""
    return payload_type(kind).model_validate(data or {})


def read(event: TimelineEvent) -> Payload | None:
    """The event's payload, or None when its kind is unknown or its data does not fit (logged): a reader
    such as the post-mortem shows the event's text instead of failing on one odd row."""
    return read_data(event.kind, event.data)


def read_data(kind: str, data: Mapping[str, Any] | None) -> Payload | None:
    try:
        return parse(kind, data)
    except UnknownKind:
        return None
    except ValidationError as exc:
        log.debug("timeline %s event with unexpected data (%s): shown by its text", kind, exc.error_count())
        return None


def read_as(event: TimelineEvent, cls: type[P]) -> P:
    """`event`'s payload as `cls`, for a reader that selected events of that kind; refuses another kind."""
    if event.kind != cls.KIND:
        raise TypeError(f"a {event.kind!r} event has no {cls.__name__} payload")
    return cls.model_validate(event.data or {})
