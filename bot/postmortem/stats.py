"""`/incident stats [days]`: how fast incidents were acknowledged and resolved, per severity and service.

The window is incidents *declared* in the last N days. One indexed query reads five columns;
means and medians are computed in Python, so the figures are the same on SQLite and PostgreSQL
(neither engine's date arithmetic is involved). Incidents never acknowledged are left out of the
time-to-acknowledge figures and counted separately, and likewise open incidents for time to
resolve: an average that silently counts them as zero, or as "now", would flatter or punish.
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col
from sqlmodel import select as select_rows
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import elapsed, utc
from bot.config import Severity
from bot.exceptions import UsageError
from bot.incidents.grammar import DEFAULT_DAYS, MAX_DAYS
from bot.incidents.models import INCIDENTS, Incident

NO_SERVICE = "(no service)"
PRIVATE = "(private)"  # fits the stats table's 14-character column
USAGE = "/incident stats [days]   e.g. /incident stats 7"


@dataclass(frozen=True)
class Figures:
    count: int
    acknowledged: int
    not_acknowledged: int
    tta_mean: timedelta | None
    tta_median: timedelta | None
    resolved: int
    not_resolved: int
    ttr_mean: timedelta | None
    ttr_median: timedelta | None
    # Impact start → declared, over every incident (the impact start is the declaration unless an
    # alert or `/incident started` says otherwise; `impact_known` counts those that said).
    ttd_mean: timedelta | None = None
    ttd_median: timedelta | None = None
    impact_known: int = 0
    # Declared → first `monitoring` (mitigated), over incidents that got there.
    mitigated: int = 0
    ttm_mean: timedelta | None = None
    ttm_median: timedelta | None = None


@dataclass(frozen=True)
class Stats:
    days: int
    since: datetime
    until: datetime
    overall: Figures
    by_severity: dict[str, Figures]  # P1..P4, only severities that occurred
    by_service: dict[str, Figures]  # most incidents first; NO_SERVICE for incidents without one


def check_days(days: int) -> int:
    if not 1 <= days <= MAX_DAYS:
        raise UsageError(f"days must be between 1 and {MAX_DAYS} (got {days}).", usage=USAGE)
    return days


@dataclass(frozen=True)
class _Row:
    declared: datetime
    impact: datetime | None
    acked: datetime | None
    mitigated: datetime | None
    resolved: datetime | None


def _seconds(start: datetime, end: datetime) -> float:
    """Between the times as the post-mortem shows them (`elapsed`), so one incident's figure is its own."""
    return elapsed(start, end).total_seconds()


def _figures(rows: list[_Row]) -> Figures:
    tta = [_seconds(r.declared, r.acked) for r in rows if r.acked is not None]
    ttr = [_seconds(r.declared, r.resolved) for r in rows if r.resolved is not None]
    ttm = [_seconds(r.declared, r.mitigated) for r in rows if r.mitigated is not None]
    ttd = [max(0.0, _seconds(r.impact or r.declared, r.declared)) for r in rows]

    def mean(values: list[float]) -> timedelta | None:
        return timedelta(seconds=statistics.fmean(values)) if values else None

    def median(values: list[float]) -> timedelta | None:
        return timedelta(seconds=statistics.median(values)) if values else None

    return Figures(
        count=len(rows),
        acknowledged=len(tta),
        not_acknowledged=len(rows) - len(tta),
        tta_mean=mean(tta),
        tta_median=median(tta),
        resolved=len(ttr),
        not_resolved=len(rows) - len(ttr),
        ttr_mean=mean(ttr),
        ttr_median=median(ttr),
        ttd_mean=mean(ttd),
        ttd_median=median(ttd),
        impact_known=sum(1 for r in rows if r.impact is not None),
        mitigated=len(ttm),
        ttm_mean=mean(ttm),
        ttm_median=median(ttm),
    )


def window(*, now: datetime, days: int) -> tuple[datetime, datetime]:
    """Incidents declared in (since, until] are counted."""
    until = utc(now)
    return until - timedelta(days=check_days(days)), until


async def declared_in(session: AsyncSession, *, now: datetime, days: int) -> list[Incident]:
    """The incidents `compute` would count, for a caller that must pass each through `can_see` first."""
    since, until = window(now=now, days=days)
    query = select_rows(Incident).where(col(Incident.declared_at) > since, col(Incident.declared_at) <= until)
    return list((await session.exec(query)).all())


async def compute(
    session: AsyncSession, *, now: datetime, days: int = DEFAULT_DAYS, only: Collection[int] | None = None
) -> Stats:
    """Figures for incidents declared in (now - days, now]; with `only`, for those ids alone (a guest's)."""
    since, until = window(now=now, days=days)
    table = INCIDENTS
    query = select(
        table.c.id,
        table.c.severity,
        table.c.service,
        table.c.private,
        table.c.declared_at,
        table.c.impact_started_at,
        table.c.acknowledged_at,
        table.c.mitigated_at,
        table.c.resolved_at,
    ).where(table.c.declared_at > since, table.c.declared_at <= until)
    conn = await session.connection()
    result = await conn.execute(query)
    counted = (tuple(row[1:]) for row in result if only is None or row[0] in only)
    return _collect(counted, days=days, since=since, until=until)


def of_incidents(incidents: Iterable[Incident], *, since: datetime, until: datetime) -> Stats:
    """The same figures for incidents already read (the dashboard's, whose charts count these same rows)."""
    rows = (
        (
            i.severity,
            i.service,
            i.private,
            i.declared_at,
            i.impact_started_at,
            i.acknowledged_at,
            i.mitigated_at,
            i.resolved_at,
        )
        for i in incidents
    )
    days = max(1, math.ceil((until - since) / timedelta(days=1)))
    return _collect(rows, days=days, since=since, until=until)


def _collect(rows: Iterable[tuple[Any, ...]], *, days: int, since: datetime, until: datetime) -> Stats:
    """`rows`: (severity, service, private, declared, impact, acked, mitigated, resolved)."""
    everything: list[_Row] = []
    by_severity: dict[str, list[_Row]] = defaultdict(list)
    by_service: dict[str, list[_Row]] = defaultdict(list)
    for severity, service, private, *times in rows:
        row = _Row(*(utc(t) if t else None for t in times))  # type: ignore[arg-type]
        everything.append(row)
        by_severity[str(Severity(severity))].append(row)
        # Counted, but never by service: the service of a private incident is not said outside its channel.
        by_service[PRIVATE if private else service or NO_SERVICE].append(row)

    severity_order = [str(s) for s in Severity]
    services = sorted(by_service, key=lambda name: (-len(by_service[name]), name in (NO_SERVICE, PRIVATE), name))
    return Stats(
        days=days,
        since=since,
        until=until,
        overall=_figures(everything),
        by_severity={s: _figures(by_severity[s]) for s in severity_order if s in by_severity},
        by_service={name: _figures(by_service[name]) for name in services},
    )
