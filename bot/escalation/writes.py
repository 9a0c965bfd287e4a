"""Pages going out at the same moment write their claims and DM outcomes together.

In a storm a hundred pages fall due within a second or two, and each writes before its DM (the
claim, with its recipients) and after it (the outcome). One transaction each, they queued behind
one another for SQLite's one writer: a few milliseconds a turn, so the last page's DM waited for
every other page's claim and outcome first. Here whoever asks while a write is under way joins
the next one (group commit): a storm costs a few transactions, not hundreds. PostgreSQL is spared
the round trips and commits the same way.

Each request keeps its own meaning: a claim is still conditional on the page being free, an
outcome on its sender holding the recipient's claim. An error fails only the requests of the
statement that failed (claims or outcomes), each caller seeing it as if it had written alone.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Sequence
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import Database
from bot.escalation import service

R = TypeVar("R")
Claim = tuple[service.PageClaim, "asyncio.Future[service.ClaimedPage | None]"]
Outcome = tuple[service.DmOutcome, "asyncio.Future[bool]"]
Request = tuple[Any, "asyncio.Future[Any]"]


class PageWrites:
    def __init__(self, *, db: Database, clock: Clock, lease: timedelta = service.DEFAULT_LEASE) -> None:
        self.db = db
        self.clock = clock
        self.lease = lease
        self._claims: list[Claim] = []
        self._outcomes: list[Outcome] = []
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0  # written so far (tests read it)

    async def claim(self, claim: service.PageClaim) -> service.ClaimedPage | None:
        """The page claimed (with its recipients if this claim recorded them), or None if it is not ours to send."""
        future: asyncio.Future[service.ClaimedPage | None] = asyncio.get_running_loop().create_future()
        self._claims.append((claim, future))
        return await self._wait(future)

    async def record(self, outcome: service.DmOutcome) -> bool:
        """Record one DM's outcome; False when the sender no longer held the recipient's claim."""
        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()
        self._outcomes.append((outcome, future))
        return await self._wait(future)

    async def _wait(self, future: asyncio.Future[R]) -> R:
        if self._writer is None or self._writer.done():
            self._writer = asyncio.get_running_loop().create_task(self._write_all(), name="page writes")
        return await future

    async def _write_all(self) -> None:
        while self._claims or self._outcomes:
            claims, self._claims = self._claims, []
            outcomes, self._outcomes = self._outcomes, []
            now = self.clock.now()
            self.transactions += 1
            try:
                async with self.db.session() as session:  # one transaction for both
                    if claims:
                        await self._answer(session, claims, self._claim(session, claims, now))
                    if outcomes:
                        await self._answer(session, outcomes, self._record(session, outcomes, now))
            except Exception as exc:  # the session itself failed (closing it, say): whoever is still waiting
                _fail([*claims, *outcomes], exc)
            except BaseException:  # cancelled (the loop is shutting down): nobody is left waiting for nothing
                requests: list[Request] = [*claims, *outcomes, *self._claims, *self._outcomes]
                for _, future in requests:
                    future.cancel()
                self._claims, self._outcomes = [], []
                raise

    @staticmethod
    async def _answer(session: AsyncSession, requests: Sequence[Request], write: Awaitable[None]) -> None:
        """Run one statement group; if it fails, only its own requests see the error (the claims are
        answered before the outcomes are written, so a claim made is never reported as failed)."""
        try:
            await write
        except Exception as exc:
            await session.rollback()
            _fail(requests, exc)

    async def _claim(self, session: AsyncSession, claims: list[Claim], now: datetime) -> None:
        claimed = await service.claim_pages(session, claims=[c for c, _ in claims], now=now, lease=self.lease)
        for claim, future in claims:
            got = claimed.get(claim.page_id)
            if got is not None and got.page.claim_token != claim.token:
                got = None  # the same page asked for twice at once: the other request has it
            if not future.done():  # its caller may have been cancelled
                future.set_result(got)

    async def _record(self, session: AsyncSession, outcomes: list[Outcome], now: datetime) -> None:
        recorded = await service.record_dms(session, outcomes=[o for o, _ in outcomes], now=now)
        for outcome, future in outcomes:
            if not future.done():
                future.set_result((outcome.target_id, outcome.token) in recorded)


def _fail(requests: Sequence[Request], exc: Exception) -> None:
    for _, future in requests:
        if not future.done():
            future.set_exception(exc)
