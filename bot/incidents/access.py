"""Who may see an incident: the one access check every surface goes through.

A public incident is seen by every full member of the workspace. A Slack guest (multi- or
single-channel) sees only the public channels they are in, so through the bot too they see a public
incident only as a member of its channel. A private one is seen only by the members of its
channel and by the people in `permissions.private_incidents` (users or user groups). Everyone else
gets what they would get for an incident that does not exist, so callers treat "cannot see" and
"not found" alike (`visible` returns None for both).

A deactivated account sees nothing: Slack stops delivering its commands, but a dashboard cookie or
the post-mortem CLI's `--as` would still name it. A person users.info does not find is not refused
here (Slack vouched for whoever sent a command or a click, and an external Slack Connect account may
not be readable); the surfaces that name people Slack did not vouch for, the dashboard's session
and the CLI, also refuse those (`Account.in_workspace`).

Membership and a person's account are read through the chat port and cached for at most `ttl`, so
a person removed from the channel, deactivated or made a guest loses access within a minute, and a
busy list page does not call Slack per row.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass
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


@dataclass(frozen=True)
class Account:
    """What users.info says about a person that access depends on."""

    known: bool = True  # False: Slack has no such person in this workspace (user_not_found)
    deactivated: bool = False
    guest: bool = False  # a multi- or single-channel guest
    tz: str | None = None  # the person's time zone (an IANA name), for times they type without one
    tz_offset: int | None = None  # its offset from UTC now, in seconds
    answered: bool = True  # False: Slack could not be asked, and this is the fallback (no time zone, for one)

    @property
    def in_workspace(self) -> bool:
        return self.known and not self.deactivated


FULL_MEMBER = Account()
UNANSWERED = Account(answered=False)  # what a person counts as while Slack cannot say: a full member


class Membership(Protocol):
    async def channel_members(self, *, channel_id: str) -> list[str]:
        """User IDs in the channel; ChatError when it cannot be read."""
        ...

    async def group_members(self, *, group_id: str) -> list[str]:
        """User IDs in a user group (`S…`); ChatError when unknown."""
        ...

    async def account(self, *, person: str) -> Account:
        """The person's account (`known=False` for user_not_found); ChatError when it cannot be read."""
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
        self._accounts: dict[str, tuple[datetime, Account]] = {}  # person -> (asked at, answer)

    async def can_see(self, *, person: str, incident: Incident) -> bool:
        account = await self.account(person=person)
        if account.deactivated:
            return False
        if incident.private:
            return await self._may_see_private(person=person, incident=incident)
        return not account.guest or await self._in_channel(person=person, incident=incident)

    async def visible(self, *, person: str, incidents: Iterable[Incident]) -> list[Incident]:
        """`can_see` per row: Slack is asked once per person (and channel) a minute, not per row (caches)."""
        return [incident for incident in incidents if await self.can_see(person=person, incident=incident)]

    async def is_guest(self, *, person: str) -> bool:
        return (await self.account(person=person)).guest

    async def account(self, *, person: str) -> Account:
        """The person's account as users.info gave it, believed for `ttl`.

        When Slack cannot say, the last answer stands; with none, the person counts as an active full
        member (and that, too, is believed for `ttl`). This is open on failure, unlike channel
        membership: a Slack outage is when responders need the bot most, and must not hide every
        public incident from all of them, at the price of a guest (or a deactivated account) keeping
        what it saw for as long as Slack cannot tell us otherwise."""
        now = self.clock.now()
        cached = self._accounts.get(person)
        if cached is not None and now - cached[0] < self.ttl:
            return cached[1]
        if self.membership is None:
            return UNANSWERED
        try:
            account = await self.membership.account(person=person)
        except BotError as exc:
            log.warning("could not read %s's account (%s); the last answer, else full member, stands", person, exc)
            account = cached[1] if cached is not None else UNANSWERED
        self._accounts[person] = (now, account)
        return account

    async def is_privileged(self, *, person: str) -> bool:
        """In `permissions.private_incidents`, directly or through a user group."""
        for principal in self.permissions.private_incidents:
            if principal == person:
                return True
            if principal.startswith("S") and person in await self._members(f"S:{principal}"):
                return True
        return False

    async def _may_see_private(self, *, person: str, incident: Incident) -> bool:
        if await self.is_privileged(person=person):
            return True
        return await self._in_channel(person=person, incident=incident)

    async def _in_channel(self, *, person: str, incident: Incident) -> bool:
        if not incident.channel_id:
            return incident.declared_by == person  # the channel is not made yet: its declarer is its only member
        return person in await self._members(f"C:{incident.channel_id}")

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
