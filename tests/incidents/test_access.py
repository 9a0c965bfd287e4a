"""The access check: who sees a private incident, with membership cached for a minute."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.config import Permissions
from bot.exceptions import ChatError
from bot.incidents.access import Access, Account
from bot.incidents.models import Incident


class Members:
    def __init__(self) -> None:
        self.channels: dict[str, list[str]] = {"C0SEC": ["U0ALICE", "U0BOT"]}
        self.groups: dict[str, list[str]] = {"S0SEC": ["U0SECURITY"]}
        self.guests: set[str] = set()
        self.gone: set[str] = set()  # deactivated
        self.calls = 0
        self.guest_calls = 0
        self.fail = False

    async def channel_members(self, *, channel_id: str) -> list[str]:
        self.calls += 1
        if self.fail:
            raise ChatError("ratelimited")
        return list(self.channels.get(channel_id, []))

    async def group_members(self, *, group_id: str) -> list[str]:
        self.calls += 1
        return list(self.groups.get(group_id, []))

    async def account(self, *, person: str) -> Account:
        self.guest_calls += 1
        if self.fail:
            raise ChatError("ratelimited")
        return Account(deactivated=person in self.gone, guest=person in self.guests)


def incident(*, private: bool, channel: str | None = "C0SEC") -> Incident:
    return Incident(id=5, title="Leaked credentials", declared_by="U0ALICE", private=private, channel_id=channel)


def access(members: Members, clock: FakeClock, **permissions: list[str]) -> Access:
    return Access(membership=members, permissions=Permissions(**permissions), clock=clock)


async def test_public_incidents_are_seen_by_full_members_without_reading_channels() -> None:
    members = Members()
    check = access(members, FakeClock())
    assert await check.can_see(person="U0MALLORY", incident=incident(private=False))
    assert members.calls == 0


async def test_a_guest_sees_a_public_incident_only_in_its_channel_and_asks_once_per_list() -> None:
    members, clock = Members(), FakeClock()
    members.guests = {"U0GUEST", "U0ALICE"}
    check = access(members, clock)
    theirs, other = incident(private=False), incident(private=False, channel="C0OTHER")
    assert [i.channel_id for i in await check.visible(person="U0ALICE", incidents=[theirs, other] * 5)] == ["C0SEC"] * 5
    assert not await check.can_see(person="U0GUEST", incident=theirs)
    assert members.guest_calls == 2  # once per person, not per row
    pending = incident(private=False, channel=None)
    assert await check.can_see(person="U0ALICE", incident=pending)  # its declarer
    assert not await check.can_see(person="U0GUEST", incident=pending)


async def test_when_slack_cannot_say_who_is_a_guest_the_last_answer_else_full_member_stands() -> None:
    members, clock = Members(), FakeClock()
    members.guests = {"U0GUEST"}
    check = access(members, clock)
    public = incident(private=False, channel="C0OTHER")
    assert not await check.can_see(person="U0GUEST", incident=public)
    members.fail = True
    clock.advance(timedelta(seconds=61))
    assert not await check.can_see(person="U0GUEST", incident=public)  # the last answer stands
    assert await check.can_see(person="U0BOB", incident=public)  # no answer yet: a full member
    assert await check.can_see(person="U0BOB", incident=public)
    assert members.guest_calls == 3  # the failure is believed for a minute too


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


async def test_a_deactivated_account_sees_nothing_within_a_minute_unless_slack_cannot_say() -> None:
    members, clock = Members(), FakeClock()
    check = access(members, clock, private_incidents=["U0CISO"])
    public, private = incident(private=False), incident(private=True)
    assert await check.can_see(person="U0CISO", incident=private)
    assert await check.can_see(person="U0ALICE", incident=private)  # in its channel
    members.gone = {"U0CISO", "U0ALICE"}  # offboarded: Slack still lists Alice in the channel
    clock.advance(timedelta(seconds=61))
    for person in ("U0CISO", "U0ALICE"):
        assert not await check.can_see(person=person, incident=private)
        assert not await check.can_see(person=person, incident=public)
    members.gone, members.fail = set(), True
    clock.advance(timedelta(seconds=61))
    assert not await check.can_see(person="U0ALICE", incident=public)  # the last answer stands
