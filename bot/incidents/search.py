"""Finding incidents for the dashboard's list: filters in SQL, newest first.

Access is not decided here: the caller passes every row through `can_see` before counting or
showing it, so a private incident is missing from the list and from its totals alike.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Severity
from bot.incidents.models import Incident, Status

# A list page never reads more rows than this; the page says when the filters should narrow it.
MAX_ROWS = 5000


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


async def find(session: AsyncSession, *, filters: Filters, limit: int = MAX_ROWS) -> list[Incident]:
    query = select(Incident)
    if filters.status == "open":
        query = query.where(col(Incident.status) != Status.RESOLVED)
    elif filters.status in Status.__members__.values():
        query = query.where(col(Incident.status) == Status(filters.status))
    if filters.severity in SEVERITIES:
        query = query.where(col(Incident.severity) == Severity(filters.severity))
    if filters.service:
        query = query.where(col(Incident.service) == filters.service)
    if filters.since is not None:
        query = query.where(col(Incident.declared_at) >= filters.since)
    if filters.until is not None:
        query = query.where(col(Incident.declared_at) < filters.until)
    if filters.text.strip():
        query = query.where(col(Incident.title).icontains(filters.text.strip(), autoescape=True))
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
