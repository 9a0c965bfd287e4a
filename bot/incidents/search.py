"""Finding incidents for the dashboard's list, newest first, among those the reader may see.

Rows are read in batches with the filters anyone may apply in SQL (status, severity, dates), each
batch goes through `can_see`, and only then are the title and service compared, on visible rows
alone: what a hidden incident's title or service says changes neither the work done nor the answer
(the matches, and whether they were cut at MAX_ROWS), so neither timing nor the "narrow the
filters" notice hints at it. A private incident is missing from the list and its totals alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Severity
from bot.db import Database
from bot.incidents.access import Access
from bot.incidents.models import Incident, Status

# A list page never shows more matches than this; the page says when the filters should narrow it.
MAX_ROWS = 5000
BATCH = 500  # rows read (and checked with `can_see`) at a time
# A search never reads more rows than this (a rare word would otherwise read the whole table on every
# page view); past it the page also asks to narrow the filters. It counts rows by the filters anyone
# may apply, so it says nothing about hidden incidents either.
MAX_SCANNED = 20_000


@dataclass(frozen=True)
class Filters:
    """Empty values mean "any". `status` may also be "open" (anything but resolved)."""

    status: str = ""
    severity: str = ""
    service: str = ""
    since: datetime | None = None  # declared at or after
    until: datetime | None = None  # declared before
    text: str = ""  # in the title, case-insensitive

    @property
    def active(self) -> bool:
        return any((self.status, self.severity, self.service, self.since, self.until, self.text))


STATUSES = ("open", *(s.value for s in Status))
SEVERITIES = tuple(s.value for s in Severity)


@dataclass(frozen=True)
class Found:
    incidents: list[Incident]  # the visible matches, newest first, at most `limit`
    truncated: bool  # more visible matches than `limit` exist


def matches(incident: Incident, filters: Filters) -> bool:
    """The filters on what only those who may see the incident know; asked of visible rows only."""
    text = filters.text.strip().casefold()
    if text and text not in incident.title.casefold():
        return False
    return not filters.service or incident.service == filters.service


async def find(
    *,
    db: Database,
    access: Access,
    person: str,
    filters: Filters,
    limit: int = MAX_ROWS,
    batch: int = BATCH,
    scan: int = MAX_SCANNED,
) -> Found:
    """The incidents `person` may see that match `filters`, newest first."""
    found: list[Incident] = []
    before: int | None = None
    for _ in range(0, scan, batch):
        async with db.session() as session:  # closed before `can_see`, which may ask Slack
            rows = await _candidates(session, filters=filters, before=before, limit=batch)
        for incident in await access.visible(person=person, incidents=rows):
            if matches(incident, filters):
                if len(found) == limit:
                    return Found(found, truncated=True)
                found.append(incident)
        if len(rows) < batch:
            return Found(found, truncated=False)
        before = rows[-1].id
    return Found(found, truncated=True)


async def _candidates(session: AsyncSession, *, filters: Filters, before: int | None, limit: int) -> list[Incident]:
    """Rows by the filters that say nothing a hidden incident keeps to itself, below id `before`."""
    query = select(Incident)
    if before is not None:
        query = query.where(col(Incident.id) < before)
    if filters.status == "open":
        query = query.where(col(Incident.status) != Status.RESOLVED)
    elif filters.status in Status.__members__.values():
        query = query.where(col(Incident.status) == Status(filters.status))
    if filters.severity in SEVERITIES:
        query = query.where(col(Incident.severity) == Severity(filters.severity))
    if filters.since is not None:
        query = query.where(col(Incident.declared_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(Incident.declared_at) < filters.until)
    result = await session.exec(query.order_by(col(Incident.id).desc()).limit(limit))
    return list(result.all())


async def service_choices(session: AsyncSession, *, guest: bool = False) -> tuple[set[str], list[Incident]]:
    """The filter's choices: services of public incidents, and the private incidents that name one.

    The caller keeps the private ones its reader may see (after the session: that may ask Slack), so
    the list does not reveal that a private incident exists for a service. A guest sees public
    incidents only in their channels, so for a guest every incident that names one is to be checked."""
    has_service = col(Incident.service).is_not(None)
    if guest:
        return set(), list((await session.exec(select(Incident).where(has_service))).all())
    public = await session.exec(select(col(Incident.service)).where(has_service, ~col(Incident.private)).distinct())
    private = await session.exec(select(Incident).where(has_service, col(Incident.private)))
    return {str(s) for s in public.all() if s}, list(private.all())
