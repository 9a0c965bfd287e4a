"""Targets: a bot.yml target (`oncall`, U…, S…, @handle) → the users to DM, read at send time.

Resolving reads Slack at most (a user group, a handle) and writes nothing. A target that resolves
to nobody says why, and whether that is worth another try (Slack failed) or final.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.config import BotConfig
from bot.escalation import oncall as oncall_rules
from bot.escalation.models import TargetKind, TargetState
from bot.escalation.pages.targets import NewTarget
from bot.escalation.ports import Pager
from bot.exceptions import ChatError, is_transient

# Per bot.yml target: resolved (SENT), or why not, for good (FAILED) or for now (PENDING).
Outcome = dict[str, tuple[TargetState, str | None]]


@dataclass
class Resolved:
    """What one bot.yml target resolved to; `reason` says why nobody, `transient` if worth retrying."""

    users: list[str]
    reason: str | None = None
    transient: bool = False


async def resolve(pager: Pager, config: BotConfig, todo: list[str], now: datetime) -> tuple[list[NewTarget], Outcome]:
    """bot.yml targets → the users to DM, and per target: resolved (SENT), or why not (for good or for now)."""
    users: list[NewTarget] = []
    outcome: Outcome = {}
    for target in todo:
        resolved = await resolve_one(pager, config, target, now)
        users += [NewTarget(TargetKind.USER, user) for user in resolved.users]
        if resolved.reason is None:
            outcome[target] = (TargetState.SENT, None)
        else:
            outcome[target] = (TargetState.PENDING if resolved.transient else TargetState.FAILED, resolved.reason)
    return users, outcome


def unresolved(outcome: Outcome) -> list[NewTarget]:
    """A row per bot.yml target that resolved to nobody, saying why (a transient reason stays pending)."""
    return [
        NewTarget(TargetKind.TARGET, target, state=state, error=reason)
        for target, (state, reason) in outcome.items()
        if reason is not None
    ]


async def resolve_one(pager: Pager, config: BotConfig, target: str, now: datetime) -> Resolved:
    """One bot.yml target → user IDs (a user group is read from Slack now, at send time)."""
    if target == "oncall":
        person = oncall_rules.on_call_at(config.oncall, now)
        if person is None:
            return Resolved([], "nobody is on call: set oncall.rotation in bot.yml")
        if not person.startswith("@"):
            return Resolved([person])
        return await _lookup(pager, person)
    if target.startswith("S"):
        return await _group(pager, target)
    if target.startswith("@"):
        return await _lookup(pager, target)
    return Resolved([target])


async def _group(pager: Pager, group_id: str) -> Resolved:
    try:
        members = await pager.group_members(group_id=group_id)
    except ChatError as exc:
        return Resolved([], f"could not read user group {group_id}: {exc.code or exc}", is_transient(exc))
    if not members:
        return Resolved([], f"user group {group_id} has no members")
    return Resolved(list(dict.fromkeys(members)))


async def _lookup(pager: Pager, handle: str) -> Resolved:
    try:
        found = await pager.lookup_user(handle=handle)
    except ChatError as exc:
        return Resolved([], f"could not look up {handle}: {exc.code or exc}", is_transient(exc))
    if found is None:
        # No person has it: a user group may (`python -m bot check` accepts both, as permissions do).
        return await _group_by_handle(pager, handle)
    return Resolved([found])


async def _group_by_handle(pager: Pager, handle: str) -> Resolved:
    try:
        members = await pager.group_members(group_id=handle)
    except ChatError as exc:
        if exc.code == "no_such_subteam":
            return Resolved([], f"no Slack user or user group is called {handle}")
        return Resolved([], f"could not look up {handle}: {exc.code or exc}", is_transient(exc))
    if not members:
        return Resolved([], f"user group {handle} has no members")
    return Resolved(list(dict.fromkeys(members)))
