"""Work that runs after the ack or after a signal.

`Background` is the bot's own: tasks spawned by signal handlers (pages, playbooks, post-mortem
uploads, alert syncs) are kept referenced, their errors logged, and awaited at shutdown.
`TaskTracker` is for the demo and the tests: it remembers every task created while installed
(through the loop's task factory), so `settle()` can wait for them instead of sleeping.
`PagesFirst` orders that work: page DMs before channel setups and page bookkeeping.
`RunGate` lets a timer's run in progress finish before its scheduler shuts down.
`renewing` keeps a claim's lease alive while its holder works on it (every `renew_every(lease)` seconds).
`KeyedLocks` serialises work per key (an incident, a playbook run) without keeping a lock per key for ever.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any, Generic, TypeVar

log = logging.getLogger(__name__)

K = TypeVar("K", bound=Hashable)


def renew_every(lease: timedelta) -> float:
    """How often (seconds) the holder of a claim with this lease renews it: a quarter of the lease, so a
    renewal or two may fail (a slow database) before the lease lapses and someone else takes the claim."""
    return lease.total_seconds() / 4


@asynccontextmanager
async def renewing(renew: Callable[[], Awaitable[None]], *, every: float, what: str) -> AsyncIterator[None]:
    """Run `renew` every `every` seconds while the block runs: the holder of a leased claim keeps it while it
    works longer than the lease (Slack or a tracker waiting out rate limits), so nobody takes it over and
    does the work a second time; a process that dies stops renewing, and its lease lapses as before."""

    async def keep() -> None:
        while True:
            await asyncio.sleep(every)
            try:
                await renew()
            except Exception:
                log.warning("could not renew %s", what, exc_info=True)

    task = asyncio.create_task(keep(), name=f"renew {what}")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


class KeyedLocks(Generic[K]):
    """One `asyncio.Lock` per key, kept only while someone holds it or waits for it.

    A bot runs for months and sees thousands of incidents; a plain dict of locks would keep one per
    incident and playbook run it ever refreshed. Per process only: replicas do not share these.
    """

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    def __len__(self) -> int:
        return len(self._locks)

    def busy(self, key: K) -> bool:
        """Whether someone holds the key's lock now (so a new holder will wait)."""
        held = self._locks.get(key)
        return held is not None and held[0].locked()

    def queued(self, key: K) -> bool:
        """Whether someone waits for the key's lock (besides its holder): the work will run again after."""
        held = self._locks.get(key)
        return held is not None and held[1] > 1

    @asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (None, 0))
        lock = lock or asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:  # a waiter cancelled before its turn leaves too
            users = self._locks[key][1] - 1
            if users:
                self._locks[key] = (lock, users)
            else:
                del self._locks[key]


class RunGate:
    """One scheduled run at a time, and a stop that lets the run in progress finish first.

    Easy to miss: APScheduler 3's asyncio executor cancels the jobs still running when it shuts
    down, whatever `wait` says, which would cut a run between its Slack call and its record. So a
    stop closes the gate (waiting for the run in progress) before the scheduler's shutdown, and
    every later run finds it closed and does nothing.
    """

    def __init__(self) -> None:
        self._lock = asyncio.Lock()
        self.closed = False

    def open(self) -> None:
        self.closed = False

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[bool]:
        """Held for one run; yields False when the gate is closed (the run must do nothing)."""
        async with self._lock:
            yield not self.closed

    async def close(self) -> None:
        self.closed = True
        async with self._lock:  # the run in progress ends first
            pass


class Background:
    def __init__(self) -> None:
        self.tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, work: Awaitable[Any], name: str) -> asyncio.Task[Any]:
        async def logged() -> None:
            try:
                await work
            except Exception:
                # Each domain's state is in the database: its sweep or a retry picks the work up again.
                log.exception("background task %r failed", name)

        task = asyncio.get_running_loop().create_task(logged(), name=name)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def drain(self, within: float = 10.0) -> None:
        """Wait for running work (and what it spawns) up to `within` seconds; then cancel the rest."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while self.tasks:
            remaining = deadline - loop.time()
            if remaining <= 0:
                for task in list(self.tasks):
                    log.warning("background task %r cancelled at shutdown", task.get_name())
                    task.cancel()
                return
            await asyncio.wait(set(self.tasks), timeout=remaining)


class TaskTracker:
    """Remembers tasks created while installed, so a caller can wait for work done after an ack."""

    def __init__(self, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.loop = loop or asyncio.get_running_loop()
        self.tasks: set[asyncio.Task[Any]] = set()
        self._previous = self.loop.get_task_factory()

    def install(self) -> None:
        def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
            task = asyncio.Task(coro, loop=loop, **kwargs)
            name = getattr(coro, "__qualname__", "")
            # Connection loops of aiohttp servers live as long as a keep-alive connection; skip them.
            if not name.startswith("RequestHandler.") and "serve" not in name:
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            return task

        self.loop.set_task_factory(factory)

    def uninstall(self) -> None:
        self.loop.set_task_factory(self._previous)

    async def settle(self, within: float = 15.0) -> None:
        """Wait until every tracked task is done; TimeoutError (naming them) after `within` seconds."""
        deadline = self.loop.time() + within
        current = asyncio.current_task()
        while True:
            pending = {t for t in self.tasks if not t.done() and t is not current}
            if not pending:
                return
            remaining = deadline - self.loop.time()
            if remaining <= 0:
                names = sorted(getattr(t.get_coro(), "__qualname__", "?") for t in pending)
                raise TimeoutError(f"background work still running after {within}s: {names}")
            await asyncio.wait(pending, timeout=remaining)


class PagesFirst:
    """A page's DMs go before work that can wait.

    The bot serves everything on one event loop, which runs ready work first come, first served.
    In a storm of declarations, a page that falls due would take its turn behind every step of
    every channel setup in flight (100 at once: seconds late). So work that can wait (channel
    setups, and a page's own invite, mention and record once its DMs are out) runs `width` at a
    time (a plain semaphore), and between its steps it waits while DMs are still to go out: at
    most `patience` seconds a step, so a DM stuck on Slack's Retry-After stalls no one for long.
    Only the event loop is ordered here: the database needs no ordering (bot/db.py).
    """

    def __init__(self, *, width: int = 4, patience: float = 0.5) -> None:
        self.width = max(width, 1)
        self.patience = patience
        self._slots = asyncio.Semaphore(self.width)  # bound to a loop on first use, not here
        self._dms_due = 0
        self._quiet = asyncio.Event()  # set while no DM is due
        self._quiet.set()

    @asynccontextmanager
    async def page(self, *, then: Callable[[], None] | None = None) -> AsyncIterator[Callable[[], None]]:
        """Around one page delivery; call what it yields once the page's DMs are out (`then` is told)."""
        self._dms_due += 1
        self._quiet.clear()
        done = False

        def dms_sent() -> None:
            nonlocal done
            if not done:
                done = True
                self._dms_due -= 1
                if not self._dms_due:
                    self._quiet.set()
                if then is not None:
                    then()

        try:
            yield dms_sent
        finally:
            dms_sent()

    @asynccontextmanager
    async def later(self) -> AsyncIterator[None]:
        """Around work that can wait (a channel setup, a page's mention): one of `width` slots."""
        async with self._slots:
            await self.step()
            yield

    async def step(self) -> None:
        """Between two steps of work that can wait: let DMs still to go out go first."""
        if self._quiet.is_set() or self.patience <= 0:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.patience)
