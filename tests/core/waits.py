"""Waiting, without sleeping a fixed time, until a turn's queue holds what a test arranged."""

from __future__ import annotations

import asyncio

from bot.db import WRITE_PRIORITY, WRITE_SINCE, Turns, Write


async def waiting(turns: Turns, count: int) -> None:
    """Until `count` waiters are queued for `turns` (at most 2 s)."""
    for _ in range(400):
        if len(turns._waiting) == count:
            return
        await asyncio.sleep(0.005)
    raise AssertionError(f"{count} waiter(s) never queued")


async def take_turn(
    turns: Turns, order: list[str], name: str, *, priority: Write = Write.NORMAL, since: float | None = None
) -> None:
    """Wait for a turn as work of `priority` for a request that arrived at `since`; note `name`; give it back."""
    WRITE_PRIORITY.set(priority)  # in this task's own context
    WRITE_SINCE.set(since)
    await turns.acquire()
    order.append(name)
    turns.release()
