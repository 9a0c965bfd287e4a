"""The access check: who sees a private incident, with membership cached for a minute."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.config import Permissions
from bot.exceptions import ChatError
from bot.incidents.access import Access
from bot.incidents.models import Incident


class Members:
    def __init__(self) -> None:
        self.channels: dict[str, list[str]] = {"C0SEC": ["U0ALICE", "U0BOT"]}
        self.groups: dict[str, list[str]] = {"S0SEC": ["U0SECURITY"]}
        self.calls = 0
        self.fail = False

    async def channel_members(self, *, channel_id: str) -> list[str]:
        self.calls += 1
        if self.fail:
            raise ChatError("ratelimited")
        return list(self.channels.get(channel_id, []))

    async def group_members(self, *, group_id: str) -> list[str]:
        self.calls += 1
        return list(self.groups.get(group_id, []))


def incident(*, private: bool, channel: str | None = "C0SEC") -> Incident:
    return Incident(id=5, title="Leaked credentials", declared_by="U0ALICE", private=private, channel_id=channel)


def access(members: Members, clock: FakeClock, **permissions: list[str]) -> Access:
    return Access(membership=members, permissions=Permissions(**permissions), clock=clock)


async def test_public_incidents_are_seen_by_everyone_without_asking_slack() -> None:
    members = Members()
    check = access(members, FakeClock())
    assert await check.can_see(person="U0MALLORY", incident=incident(private=False))
    assert members.calls == 0


async def test_a_private_incident_is_seen_by_channel_members_and_the_privileged_only() -> None:
    members = Members()
    check = access(members, FakeClock(), private_incidents=["S0SEC", "U0CISO"])
    private = incident(private=True)
    assert await check.can_see(person="U0ALICE", incident=private)
    assert await check.can_see(person="U0SECURITY", incident=private)
    assert await check.can_see(person="U0CISO", incident=private)
    assert not await check.can_see(person="U0MALLORY", incident=private)
    assert [i.id for i in await check.visible(person="U0MALLORY", incidents=[private])] == []


async def test_membership_is_cached_for_a_minute_then_read_again() -> None:
    members, clock = Members(), FakeClock()
    check = access(members, clock)
    private = incident(private=True)
    assert not await check.can_see(person="U0BOB", incident=private)
    members.channels["C0SEC"].append("U0BOB")
    assert not await check.can_see(person="U0BOB", incident=private)  # cached
    assert members.calls == 1
    clock.advance(timedelta(seconds=61))
    assert await check.can_see(person="U0BOB", incident=private)
    assert members.calls == 2


async def test_when_slack_cannot_say_a_private_incident_stays_hidden() -> None:
    members = Members()
    members.fail = True
    check = access(members, FakeClock())
    assert not await check.can_see(person="U0ALICE", incident=incident(private=True))


async def test_before_its_channel_exists_only_the_declarer_sees_it() -> None:
    check = access(Members(), FakeClock())
    pending = incident(private=True, channel=None)
    assert await check.can_see(person="U0ALICE", incident=pending)
    assert not await check.can_see(person="U0BOB", incident=pending)
