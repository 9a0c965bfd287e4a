"""Per-key locks (an incident's standing messages, a playbook run's progress): one at a time per key,
and nothing kept once nobody holds or waits for a key."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from bot.archive import flows as archive_flows
from bot.archive import service as archive_service
from bot.followups import flows as followup_flows
from bot.followups import service as followup_service
from bot.tasks import KeyedLocks, renew_every


async def test_holders_of_one_key_take_turns_and_other_keys_do_not_wait() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    order: list[str] = []
    first_in = asyncio.Event()
    release = asyncio.Event()

    async def first() -> None:
        async with locks.hold(1):
            order.append("first in")
            first_in.set()
            await release.wait()
            order.append("first out")

    async def second() -> None:
        async with locks.hold(1):
            order.append("second in")

    async def other_key() -> None:
        async with locks.hold(2):
            order.append("other key in")

    task = asyncio.create_task(first())
    await first_in.wait()
    assert not locks.queued(1)
    waiting = asyncio.create_task(second())
    await other_key()  # not held up by key 1
    await asyncio.sleep(0)
    assert locks.busy(1) and not locks.busy(2)
    assert locks.queued(1) and not locks.queued(2)
    assert order == ["first in", "other key in"]
    release.set()
    await asyncio.gather(task, waiting)
    assert order == ["first in", "other key in", "first out", "second in"]


async def test_a_key_is_forgotten_when_its_last_holder_leaves() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    for incident in range(100):
        async with locks.hold(incident):
            assert len(locks) == 1
    assert len(locks) == 0
    assert not locks.busy(7)


async def test_a_waiter_cancelled_before_its_turn_leaves_nothing_behind() -> None:
    locks: KeyedLocks[int] = KeyedLocks()
    holding = asyncio.Event()
    release = asyncio.Event()

    async def holder() -> None:
        async with locks.hold(1):
            holding.set()
            await release.wait()

    async def waiter() -> None:
        async with locks.hold(1):
            raise AssertionError("a cancelled waiter never gets the lock")

    task = asyncio.create_task(holder())
    await holding.wait()
    cancelled = asyncio.create_task(waiter())
    await asyncio.sleep(0)
    cancelled.cancel()
    with pytest.raises(asyncio.CancelledError):
        await cancelled
    assert locks.busy(1)
    release.set()
    await task
    assert len(locks) == 0


async def test_an_error_inside_releases_the_key() -> None:
    locks: KeyedLocks[str] = KeyedLocks()
    with pytest.raises(RuntimeError):
        async with locks.hold("INC-1"):
            raise RuntimeError("Slack failed")
    assert len(locks) == 0
    async with locks.hold("INC-1"):  # not left locked
        assert locks.busy("INC-1")


def test_a_claim_is_renewed_four_times_per_lease_by_every_holder() -> None:
    """One rule for the follow-ups' create claim and the archive timer's claim: a quarter of each lease."""
    assert renew_every(timedelta(minutes=2)) == 30.0
    assert renew_every(archive_service.LEASE) == archive_flows.RENEW_EVERY
    assert renew_every(followup_service.LEASE) == followup_flows.RENEW_EVERY
