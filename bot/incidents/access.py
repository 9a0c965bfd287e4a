"""Who may see an incident: the one access check every surface goes through.

A public incident is seen by everyone in the workspace. A private one only by the members of its
channel and by the people in `permissions.private_incidents` (users or user groups). Everyone else
gets what they would get for an incident that does not exist, so callers treat "cannot see" and
"not found" alike (`visible` returns None for both).

Membership is read through the chat port and cached for at most `ttl`, so a person removed from
the channel loses access within a minute and a busy list page does not call Slack per row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Protocol

from bot.clock import Clock
from bot.config import Permissions
from bot.exceptions import BotError, NotFound
from bot.incidents import service
from bot.incidents.models import Incident

if TYPE_CHECKING:
    from bot.deps import Deps

log = logging.getLogger(__name__)


class Membership(Protocol):
    async def channel_members(self, *, channel_id: str) -> list[str]:
        """User IDs in the channel; ChatError when it cannot be read."""
        ...

    async def group_members(self, *, group_id: str) -> list[str]:
        """User IDs in a user group (`S…`); ChatError when unknown."""
        ...


class Access:
    """`can_see(person, incident)`, with membership cached briefly."""

    def __init__(
        self, *, membership: Membership | None, permissions: Permissions, clock: Clock, ttl: timedelta | None = None
    ) -> None:
        self.membership = membership
        self.permissions = permissions
        self.clock = clock
        self.ttl = ttl if ttl is not None else timedelta(minutes=1)
        self._cache: dict[str, tuple[datetime, frozenset[str]]] = {}

    async def can_see(self, *, person: str, incident: Incident) -> bool:
        if not incident.private:
            return True
        if await self.is_privileged(person=person):
            return True
        if incident.declared_by == person and not incident.channel_id:
            return True  # the channel is not made yet: its declarer is its only member
        if not incident.channel_id:
            return False
        return person in await self._members(f"C:{incident.channel_id}")

    async def is_privileged(self, *, person: str) -> bool:
        """In `permissions.private_incidents`, directly or through a user group."""
        for principal in self.permissions.private_incidents:
            if principal == person:
                return True
            if principal.startswith("S") and person in await self._members(f"S:{principal}"):
                return True
        return False

    async def visible(self, *, person: str, incidents: Iterable[Incident]) -> list[Incident]:
        return [incident for incident in incidents if await self.can_see(person=person, incident=incident)]

    def forget(self, *, channel_id: str) -> None:
        """Drop a channel's cached members (the bot just invited someone)."""
        self._cache.pop(f"C:{channel_id}", None)

    async def _members(self, key: str) -> frozenset[str]:
        now = self.clock.now()
        cached = self._cache.get(key)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        if self.membership is None:
            return frozenset()
        kind, ref = key.split(":", 1)
        try:
            if kind == "C":
                people = await self.membership.channel_members(channel_id=ref)
            else:
                people = await self.membership.group_members(group_id=ref)
        except BotError as exc:
            # Closed on failure: a private incident is hidden rather than shown when Slack cannot say.
            log.warning("could not read the members of %s: %s", ref, exc)
            return frozenset()
        members = frozenset(people)
        self._cache[key] = (now, members)
        return members


def not_found(number: int) -> NotFound:
    """The one answer for an incident that does not exist and for one the person may not see."""
    return NotFound(f"There is no incident INC-{number} that you can see. `/incident list` shows the open incidents.")


async def find(deps: Deps, *, number: int, person: str) -> Incident:
    """The incident `INC-<number>` as `person` may see it, else the same NotFound as for a missing one."""
    async with deps.db.session() as session:
        incident = await session.get(Incident, number)
    if incident is None or not await deps.incident_access.can_see(person=person, incident=incident):
        raise not_found(number)
    return incident


async def in_channel(deps: Deps, *, channel_id: str, person: str) -> Incident | None:
    """The incident whose channel this is, when `person` may see it."""
    async with deps.db.session() as session:
        incident = await service.by_channel(session, channel_id=channel_id)
    if incident is None or not await deps.incident_access.can_see(person=person, incident=incident):
        return None
    return incident
