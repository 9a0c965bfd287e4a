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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import case, update
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import Clock
from bot.db import Database
from bot.escalation import leases
from bot.escalation.models import Page, PageTarget, TargetState
from bot.escalation.pages.targets import NewTarget, new_target_rows
from bot.incidents.models import Incident

R = TypeVar("R")


@dataclass(frozen=True)
class PageClaim:
    """A page to claim; `recipients`, resolved before claiming, are recorded if this is its first claim."""

    page_id: int
    token: str
    recipients: list[NewTarget] | None = None


@dataclass(frozen=True)
class ClaimedPage:
    page: Page
    recipients: list[PageTarget] | None  # recorded with the claim (a first claim), else None: read them
    incident: Incident | None = None  # read by the claim for a first claim with `recipients`; else None: read it


@dataclass(frozen=True)
class DmOutcome:
    """How one page DM went, recorded while its sender holds the recipient's claim (`token`)."""

    target_id: int
    token: str
    state: TargetState
    error: str | None = None


Claim = tuple[PageClaim, "asyncio.Future[ClaimedPage | None]"]
Outcome = tuple[DmOutcome, "asyncio.Future[bool]"]
Request = tuple[Any, "asyncio.Future[Any]"]


class PageWrites:
    def __init__(self, *, db: Database, clock: Clock, lease: timedelta = leases.DEFAULT_LEASE) -> None:
        self.db = db
        self.clock = clock
        self.lease = lease
        self._claims: list[Claim] = []
        self._outcomes: list[Outcome] = []
        self._writer: asyncio.Task[None] | None = None
        self.transactions = 0  # written so far (tests read it)

    async def claim(self, claim: PageClaim) -> ClaimedPage | None:
        """The page claimed (with its recipients if this claim recorded them), or None if it is not ours to send."""
        future: asyncio.Future[ClaimedPage | None] = asyncio.get_running_loop().create_future()
        self._claims.append((claim, future))
        return await self._wait(future)

    async def record(self, outcome: DmOutcome) -> bool:
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
        claimed = await claim_pages(session, claims=[c for c, _ in claims], now=now, lease=self.lease)
        for claim, future in claims:
            got = claimed.get(claim.page_id)
            if got is not None and got.page.claim_token != claim.token:
                got = None  # the same page asked for twice at once: the other request has it
            if not future.done():  # its caller may have been cancelled
                future.set_result(got)

    async def _record(self, session: AsyncSession, outcomes: list[Outcome], now: datetime) -> None:
        recorded = await record_dms(session, outcomes=[o for o, _ in outcomes], now=now)
        for outcome, future in outcomes:
            if not future.done():
                future.set_result((outcome.target_id, outcome.token) in recorded)


def _fail(requests: Sequence[Request], exc: Exception) -> None:
    for _, future in requests:
        if not future.done():
            future.set_exception(exc)


async def claim_pages(
    session: AsyncSession, *, claims: list[PageClaim], now: datetime, lease: timedelta = leases.DEFAULT_LEASE
) -> dict[int, ClaimedPage]:
    """Claim pages (each with its own token) in one transaction, and record first claims' recipients in it.

    Each transaction before a DM is a turn at SQLite's one writer, so one for the claim and the
    recipients of every page going out at once (`PageWrites`). Pages not returned are held
    by someone else, sent, cancelled or not due; a page asked for twice goes to the last request.
    The incidents of first claims that recorded their recipients are read in the same transaction,
    after the claim: their sender checks them (acknowledged, resolved?) without writing again, and reads
    the incident once more just before its first DM (`PageSender._recheck`: an ack may commit in
    between). Any other sender reads the incident and the recipients itself, so nothing is read for it here.
    """
    by_id = {claim.page_id: claim for claim in claims}
    if not by_id:
        return {}
    tokens = {page_id: claim.token for page_id, claim in by_id.items()}
    pages = await leases.claim_pages(session, tokens, now, lease)
    recorded: dict[int, list[PageTarget]] = {}
    for page in pages:
        claim = by_id[page.id]  # type: ignore[index]
        if page.attempts == 1 and claim.recipients is not None:
            rows = new_target_rows(claim.page_id, claim.recipients, now=now, token=claim.token, lease=lease)
            session.add_all(rows)
            recorded[claim.page_id] = rows
    try:
        incidents = await _incidents(session, [page for page in pages if page.id in recorded])
        await session.commit()
    except IntegrityError:
        # Recipients already on record for a page never claimed before (not by this code): theirs
        # stand. Claim without recording; each sender reads the rows after its claim, as a retry does.
        await session.rollback()
        pages = await leases.claim_pages(session, tokens, now, lease)
        await session.commit()
        recorded, incidents = {}, {}
    return {
        page.id: ClaimedPage(page, recorded.get(page.id), incidents.get(page.incident_id))
        for page in pages
        if page.id is not None
    }


async def _incidents(session: AsyncSession, pages: list[Page]) -> dict[int, Incident]:
    """The incidents of these pages (the query's autoflush writes the recipients added, so a conflict raises here)."""
    if not pages:
        return {}
    found = await session.exec(select(Incident).where(col(Incident.id).in_({page.incident_id for page in pages})))
    return {incident.id: incident for incident in found.all() if incident.id is not None}


async def record_dms(session: AsyncSession, *, outcomes: list[DmOutcome], now: datetime) -> set[tuple[int, str]]:
    """Record DMs' outcomes in one transaction (one statement per kind of outcome); returns (row, token) recorded.

    A row is recorded only while it is pending under the outcome's token, as `targets.mark_target` does.
    Two outcomes for one row (a sender whose claim was taken over, and the one who took it) go in
    separate statements, so the claim holder's is recorded whichever comes first.
    """
    groups: dict[tuple[TargetState, str | None, int], dict[int, str]] = {}
    for outcome in outcomes:
        error = outcome.error[:500] if outcome.error else None
        again = 0
        while outcome.target_id in groups.setdefault((outcome.state, error, again), {}):
            again += 1
        groups[(outcome.state, error, again)][outcome.target_id] = outcome.token
    recorded: set[tuple[int, str]] = set()
    for (state, error, _), tokens in groups.items():
        result = await session.exec(
            update(PageTarget)
            .where(
                col(PageTarget.id).in_(list(tokens)),
                col(PageTarget.state) == TargetState.PENDING,
                col(PageTarget.claim_token) == case(tokens, value=col(PageTarget.id)),
            )
            .values(
                state=state,
                error=error,
                done_at=None if state == TargetState.PENDING else now,
                claim_expires_at=None,
            )
            .returning(col(PageTarget.id), col(PageTarget.claim_token))
        )
        recorded.update((row_id, token) for row_id, token in result.all())
    await session.commit()
    return recorded
