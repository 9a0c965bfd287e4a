"""Weekly trends for the dashboard's charts: incidents per week by severity, time to acknowledge and
to resolve per week (medians), and incidents by service.

Pure computation over incident rows, so it is tested without a database. Weeks start on Monday
00:00 UTC. Incidents the viewer may not see are counted, but under PRIVATE instead of their service
(the same rule as `/incident stats`: counted without title or service). A guest's rows are only
those they can see (`flows.counted`), as for `/incident stats`.
"""

from __future__ import annotations

import statistics
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import elapsed, utc
from bot.config import Severity
from bot.incidents.models import Incident
from bot.postmortem.stats import NO_SERVICE

PRIVATE = "(private)"
MAX_WEEKS = 104


@dataclass(frozen=True)
class Week:
    start: date
    by_severity: dict[str, int]  # every severity, zero included
    tta_median: timedelta | None
    ttr_median: timedelta | None

    @property
    def count(self) -> int:
        return sum(self.by_severity.values())


@dataclass(frozen=True)
class Trends:
    weeks: list[Week]  # oldest first
    by_service: list[tuple[str, int]]  # most incidents first
    total: int
    since: datetime
    until: datetime


def week_start(at: datetime) -> date:
    day = utc(at).date()
    return day - timedelta(days=day.weekday())


def window(*, now: datetime, weeks: int) -> tuple[datetime, datetime]:
    """From the Monday `weeks - 1` weeks before this one, to now."""
    weeks = max(1, min(weeks, MAX_WEEKS))
    first = week_start(now) - timedelta(weeks=weeks - 1)
    return datetime.combine(first, time(0), tzinfo=UTC), utc(now)


async def incidents_between(session: AsyncSession, *, since: datetime, until: datetime) -> list[Incident]:
    query = select(Incident).where(col(Incident.declared_at) >= since, col(Incident.declared_at) <= until)
    return list((await session.exec(query.order_by(col(Incident.declared_at)))).all())


def _median(values: list[float]) -> timedelta | None:
    return timedelta(seconds=statistics.median(values)) if values else None


def compute(incidents: Iterable[Incident], *, now: datetime, weeks: int, hidden: set[int]) -> Trends:
    """`hidden`: ids of incidents the viewer may not see (counted, service withheld)."""
    since, until = window(now=now, weeks=weeks)
    starts = []
    day = since.date()
    while day <= until.date():
        starts.append(day)
        day += timedelta(weeks=1)
    severities = [str(s) for s in Severity]
    counts: dict[date, Counter[str]] = {s: Counter() for s in starts}
    tta: dict[date, list[float]] = {s: [] for s in starts}
    ttr: dict[date, list[float]] = {s: [] for s in starts}
    services: Counter[str] = Counter()
    total = 0
    for incident in incidents:
        declared = utc(incident.declared_at)
        start = week_start(declared)
        if start not in counts or declared > until:
            continue
        total += 1
        counts[start][str(incident.severity)] += 1
        if incident.acknowledged_at is not None:
            tta[start].append(elapsed(declared, incident.acknowledged_at).total_seconds())
        if incident.resolved_at is not None:
            ttr[start].append(elapsed(declared, incident.resolved_at).total_seconds())
        service = PRIVATE if incident.id in hidden else (incident.service or NO_SERVICE)
        services[service] += 1
    return Trends(
        weeks=[
            Week(
                start=s,
                by_severity={sev: counts[s][sev] for sev in severities},
                tta_median=_median(tta[s]),
                ttr_median=_median(ttr[s]),
            )
            for s in starts
        ],
        by_service=sorted(services.items(), key=lambda kv: (-kv[1], kv[0])),
        total=total,
        since=since,
        until=until,
    )
