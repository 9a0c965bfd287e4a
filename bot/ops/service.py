"""Who may restart or roll back, and the audit log that remembers who did.

`permissions.restart` / `permissions.rollback` in bot.yml list Slack users (`U…`, `@handle`)
and user groups (`S…`, `@group-handle`). Group membership is asked of a `Directory` port at the
moment of the action (Slack implements it), so a person removed from the on-call group loses
the right at once. An empty list means nobody: restart and rollback are off until configured.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import text, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Permissions
from bot.exceptions import BotError
from bot.ops.models import Action, AuditLog, Outcome
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

_DETAIL_MAX = 2000


class AlreadyHandled(BotError):
    """This confirmation was already confirmed or cancelled."""

    def __init__(self, request_id: str) -> None:
        super().__init__("this request was already handled (confirmed or cancelled)")
        self.request_id = request_id


class Busy(BotError):
    """Another restart or rollback of the service is still being followed, or ran after this was shown."""

    def __init__(self, other: AuditLog) -> None:
        super().__init__(f"{other.action} of {other.service} by {other.actor} ({other.outcome})")
        self.other = AuditLog(**other.model_dump())  # a copy: the claim's rollback expires the loaded row


# Claims of one service take turns (PostgreSQL: a transaction-level advisory lock in this key space).
_CLAIM_LOCK = 0x1D0B5


async def by_request(session: AsyncSession, *, request_id: str) -> AuditLog | None:
    return (await session.exec(select(AuditLog).where(AuditLog.request_id == request_id))).first()


async def acted_since(session: AsyncSession, *, service: str, since: datetime, besides: str) -> AuditLog | None:
    """The first restart or rollback of `service` run (confirmed, not refused) after `since`, other
    than the confirmation `besides`."""
    query = (
        select(AuditLog)
        .where(
            AuditLog.service == service,
            col(AuditLog.at) > since,
            col(AuditLog.request_id).is_not(None),
            col(AuditLog.request_id) != besides,
            col(AuditLog.action).in_([a.value for a in Action]),
            col(AuditLog.outcome).not_in([Outcome.REFUSED.value, Outcome.CANCELLED.value]),
        )
        .order_by(col(AuditLog.at), col(AuditLog.id))
    )
    return (await session.exec(query)).first()


async def running(session: AsyncSession, *, service: str, besides: int | None = None) -> AuditLog | None:
    """The oldest restart or rollback of `service` still `started` (being followed), other than row `besides`."""
    query = select(AuditLog).where(
        AuditLog.service == service,
        col(AuditLog.outcome) == Outcome.STARTED.value,
        col(AuditLog.action).in_([a.value for a in Action]),
    )
    if besides is not None:
        query = query.where(col(AuditLog.id) != besides)
    return (await session.exec(query.order_by(col(AuditLog.at), col(AuditLog.id)))).first()


async def _take_turns(session: AsyncSession, service: str) -> None:
    """Serialise the claims of one service until this transaction ends.

    SQLite needs nothing more: the claim's INSERT comes first and holds the one write lock.
    """
    connection = await session.connection()
    if connection.dialect.name == "postgresql":
        await connection.execute(
            text("SELECT pg_advisory_xact_lock(:space, hashtext(:service))"),
            {"space": _CLAIM_LOCK, "service": service},
        )


async def _exclusive(session: AsyncSession, entry: AuditLog, since: datetime | None) -> None:
    """Busy when another action on the service is running, or ran after `since` (the confirmation's)."""
    assert entry.id is not None and entry.request_id is not None
    other = await running(session, service=entry.service, besides=entry.id)
    if other is None and since is not None:
        other = await acted_since(session, service=entry.service, since=since, besides=entry.request_id)
    if other is not None:
        raise Busy(other)


class Directory(Protocol):
    """What the permission check needs to know about people and groups."""

    async def group_members(self, *, group_id: str) -> list[str]:
        """User IDs in a user group given by ID (`S…`) or handle (`@oncall`); ChatError when unknown."""
        ...

    async def lookup_user(self, *, handle: str) -> str | None:
        """The user ID for an `@handle`, or None when no user has it."""
        ...


@dataclass(frozen=True)
class Decision:
    allowed: bool
    via: str | None = None  # the entry in bot.yml that allowed it: "U0LEAD", "S0ONCALL"
    reason: str = ""  # may mark where `people` go with `{people}` (see BotError)
    people: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return self.allowed

    @property
    def plain(self) -> str:
        """The reason with the people as plain IDs (audit log, timeline)."""
        return str(BotError(self.reason, people=self.people))


async def check_permission(
    *, action: Action | str, user_id: str, permissions: Permissions, directory: Directory | None
) -> Decision:
    """Allowed when the user is listed directly or is in a listed group; never raises."""
    action = Action(action)
    principals: Sequence[str] = getattr(permissions, action.value)
    if not principals:
        return Decision(False, reason=f"nobody may {action.value}: permissions.{action.value} in bot.yml is empty")
    if user_id in principals:
        return Decision(True, via=user_id)
    problems: list[str] = []
    for principal in principals:
        if principal.startswith(("U", "W")):
            continue
        if directory is None:
            problems.append(f"cannot look up {principal}")
            continue
        try:
            if principal.startswith("@"):
                person = await directory.lookup_user(handle=principal)
                if person is not None:
                    if person == user_id:
                        return Decision(True, via=principal)
                    continue  # a person's handle, not a group's
            if user_id in await directory.group_members(group_id=principal):
                return Decision(True, via=principal)
        except BotError as exc:
            log.warning("permission lookup of %s failed: %s", principal, exc)
            problems.append(f"could not check {principal}: {exc}")
    reason = f"only {BotError.PEOPLE} may {action.value}"
    if problems:
        reason += " (" + "; ".join(problems) + ")"
    return Decision(False, reason=reason, people=tuple(principals))


def _short(value: str | None, limit: int = 200) -> str | None:
    return None if value is None else value[:limit]


def _clip(text: str) -> str:
    return text if len(text) <= _DETAIL_MAX else text[: _DETAIL_MAX - 1] + "…"


async def record(
    session: AsyncSession,
    *,
    at: datetime,
    actor: str,
    action: Action | str,
    service: str,
    outcome: Outcome | str,
    platform: str | None = None,
    from_deployment: str | None = None,
    target_deployment: str | None = None,
    detail: str = "",
    incident_id: int | None = None,
    channel_id: str | None = None,
    finished: bool = True,
    request_id: str | None = None,
    timeline_text: str | None = None,
    exclusive: bool = False,
    since: datetime | None = None,
) -> AuditLog:
    """Write one audit row (and, in an incident, its timeline event) in one transaction.

    With a `request_id` already used (the same confirmation clicked twice) this raises
    `AlreadyHandled` and writes nothing. `exclusive` (a claim that starts an action): `Busy`,
    and nothing written, while another action on the service is running or ran after `since`;
    checked after the row is written, with the claims of the service taking turns, so two
    confirmations clicked at once (two people, two replicas) start one action, not two.
    """
    entry = AuditLog(
        at=at,
        finished_at=at if finished else None,
        actor=actor[:100],
        action=str(action),
        service=service[:100],
        platform=platform,
        from_deployment=_short(from_deployment),
        target_deployment=_short(target_deployment),  # may be what a user typed: keep it within the column
        outcome=str(outcome),
        detail=_clip(detail),
        incident_id=incident_id,
        channel_id=channel_id,
        request_id=request_id,
    )
    try:
        await _write(session, entry, exclusive=exclusive, since=since, timeline_text=timeline_text)
    except IntegrityError:
        await session.rollback()
        if request_id is None:
            raise
        raise AlreadyHandled(request_id) from None
    except Busy:
        await session.rollback()
        raise
    await session.refresh(entry)
    return entry


async def _write(
    session: AsyncSession, entry: AuditLog, *, exclusive: bool, since: datetime | None, timeline_text: str | None
) -> None:
    if exclusive:
        await _take_turns(session, entry.service)
    session.add(entry)
    if exclusive:
        await session.flush()
        await _exclusive(session, entry, since)
    if entry.incident_id is not None and timeline_text is not None:
        await timeline.add(
            session,
            incident_id=entry.incident_id,
            at=entry.at,
            actor=entry.actor,
            text=timeline_text,
            payload=_deployed(entry),
        )
    await session.commit()


def _deployed(entry: AuditLog) -> events.Deployed:
    """The `deploy` timeline event of an audit row."""
    return events.Deployed(
        action=entry.action,
        service=entry.service,
        outcome=entry.outcome,
        platform=entry.platform,
        from_deployment=entry.from_deployment,
        to=entry.target_deployment,
    )


async def finish(
    session: AsyncSession,
    *,
    audit_id: int,
    at: datetime,
    outcome: Outcome | str,
    detail: str = "",
    target_deployment: str | None = None,
    incident_id: int | None = None,
    actor: str | None = None,
    timeline_events: Sequence[tuple[str, events.Payload]] = (),
) -> bool:
    """Close a `started` row with its outcome, plus timeline events `(text, payload)`; one commit.

    Only a row still `started` is updated, so a second finish (a retry, another replica) is a no-op.
    """
    values: dict[str, Any] = {"outcome": str(outcome), "finished_at": at, "detail": _clip(detail)}
    if target_deployment is not None:
        values["target_deployment"] = _short(target_deployment)
    result = await session.exec(
        update(AuditLog)
        .where(col(AuditLog.id) == audit_id, col(AuditLog.outcome) == Outcome.STARTED.value)
        .values(**values)
    )
    changed = bool(result.rowcount)
    if changed and incident_id is not None:
        for text, payload in timeline_events:
            await timeline.add(session, incident_id=incident_id, at=at, actor=actor, text=text, payload=payload)
    await session.commit()
    return changed


async def entries(
    session: AsyncSession,
    *,
    service: str | None = None,
    incident_id: int | None = None,
    actor: str | None = None,
    limit: int = 50,
) -> list[AuditLog]:
    """Newest first."""
    query = select(AuditLog)
    if service is not None:
        query = query.where(AuditLog.service == service)
    if incident_id is not None:
        query = query.where(AuditLog.incident_id == incident_id)
    if actor is not None:
        query = query.where(AuditLog.actor == actor)
    query = query.order_by(col(AuditLog.at).desc(), col(AuditLog.id).desc()).limit(limit)
    return list((await session.exec(query)).all())


async def interrupt_started(session: AsyncSession, *, now: datetime, before: datetime | None) -> list[AuditLog]:
    """Close as `interrupted` the `started` rows nobody follows any more (the process that ran them
    died); `before`: only rows started before it (other replicas may be following younger ones).

    Each row is closed with a conditional UPDATE, so two replicas starting together close it once;
    the incident's timeline says so. Returns the rows this call closed.
    """
    query = select(AuditLog).where(col(AuditLog.outcome) == Outcome.STARTED.value)
    if before is not None:
        query = query.where(col(AuditLog.at) < before)
    closed = []
    for row in list((await session.exec(query.order_by(col(AuditLog.id)))).all()):
        assert row.id is not None
        what = f"{Action(row.action).verb} of {row.service}"
        changed = await finish(
            session,
            audit_id=row.id,
            at=now,
            outcome=Outcome.INTERRUPTED,
            detail="the bot stopped while following it; check the service and run it again if needed",
            incident_id=row.incident_id,
            timeline_events=[
                (
                    f"{what}: interrupted (the bot stopped while following it)",
                    events.Deployed(action=row.action, service=row.service, outcome=Outcome.INTERRUPTED.value),
                )
            ],
        )
        if changed:
            closed.append(row)
    return closed
