"""`/incident stats [days]`: figures over a seeded set whose answers are worked out by hand."""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.config import Severity
from bot.db import Database
from bot.exceptions import UsageError
from bot.incidents import grammar
from bot.incidents.models import Incident, Status
from bot.postmortem import stats
from tests.postmortem.seed import T0

NOW = T0 + timedelta(days=60)
M = timedelta(minutes=1)


async def seed(db: Database) -> None:
    """(severity, service, declared days ago, minutes to ack or None, minutes to resolve or None)."""
    rows = [
        ("A", Severity.P1, "gateway", 1, 2, 60),
        ("B", Severity.P1, "gateway", 2, 4, 30),
        ("C", Severity.P1, "web", 3, 12, 90),
        ("D", Severity.P2, "gateway", 4, None, 20),  # never acknowledged
        ("E", Severity.P3, None, 5, 1, None),  # still open
        ("F", Severity.P1, "gateway", 40, 100, 1000),  # outside 30 days, inside 60
        ("G", Severity.P4, "web", 30, 5, 5),  # exactly 30 days ago: outside a 30-day window
        ("H", Severity.P2, "web", -1, 1, 1),  # declared in the future (clock skew): outside
    ]
    async with db.session() as session:
        for title, severity, service, days_ago, ack, resolve in rows:
            declared = NOW - timedelta(days=days_ago)
            session.add(
                Incident(
                    title=title,
                    severity=severity,
                    service=service,
                    declared_by="U0ALICE",
                    declared_at=declared,
                    acknowledged_at=declared + ack * M if ack is not None else None,
                    resolved_at=declared + resolve * M if resolve is not None else None,
                    status=Status.RESOLVED if resolve is not None else Status.INVESTIGATING,
                )
            )
        await session.commit()


async def test_last_30_days_overall(db: Database) -> None:
    await seed(db)
    async with db.session() as session:
        result = await stats.compute(session, now=NOW)
    assert result.days == 30 and result.since == NOW - timedelta(days=30) and result.until == NOW
    overall = result.overall
    assert (overall.count, overall.acknowledged, overall.not_acknowledged) == (5, 4, 1)
    assert overall.tta_mean == 4.75 * M  # (2 + 4 + 12 + 1) / 4
    assert overall.tta_median == 3 * M  # 1 2 | 4 12
    assert (overall.resolved, overall.not_resolved) == (4, 1)
    assert overall.ttr_mean == 50 * M  # (60 + 30 + 90 + 20) / 4
    assert overall.ttr_median == 45 * M  # 20 30 | 60 90


async def test_by_severity_and_by_service(db: Database) -> None:
    await seed(db)
    async with db.session() as session:
        result = await stats.compute(session, now=NOW, days=30)
    assert list(result.by_severity) == ["P1", "P2", "P3"]
    p1 = result.by_severity["P1"]
    assert (p1.count, p1.tta_mean, p1.tta_median, p1.ttr_mean, p1.ttr_median) == (3, 6 * M, 4 * M, 60 * M, 60 * M)
    p2 = result.by_severity["P2"]
    # Never acknowledged: no TTA at all rather than zero, and counted apart.
    assert (p2.count, p2.acknowledged, p2.not_acknowledged, p2.tta_mean, p2.tta_median) == (1, 0, 1, None, None)
    assert p2.ttr_median == 20 * M
    p3 = result.by_severity["P3"]
    assert (p3.resolved, p3.not_resolved, p3.ttr_mean) == (0, 1, None)

    assert list(result.by_service) == ["gateway", "web", stats.NO_SERVICE]
    gateway = result.by_service["gateway"]
    assert (gateway.count, gateway.acknowledged, gateway.not_acknowledged) == (3, 2, 1)
    assert (gateway.tta_mean, gateway.tta_median) == (3 * M, 3 * M)
    assert gateway.ttr_mean == timedelta(minutes=110 / 3)
    assert gateway.ttr_median == 30 * M
    assert result.by_service[stats.NO_SERVICE].count == 1


async def test_a_longer_window_takes_older_incidents(db: Database) -> None:
    await seed(db)
    async with db.session() as session:
        result = await stats.compute(session, now=NOW, days=60)
    assert result.overall.count == 7  # A-G; H is in the future
    assert result.by_severity["P1"].tta_median == 8 * M  # 2 4 | 12 100
    assert result.by_severity["P4"].count == 1


async def test_no_incidents(db: Database) -> None:
    async with db.session() as session:
        result = await stats.compute(session, now=NOW, days=7)
    assert result.overall.count == 0 and result.overall.tta_mean is None and result.overall.ttr_median is None
    assert result.by_severity == {} and result.by_service == {}


@pytest.mark.parametrize(
    ("text", "days"), [("", 30), (None, 30), ("7", 7), ("14d", 14), ("2 weeks", 14), ("90 days", 90), ("1W", 7)]
)
def test_parse_days(text: str | None, days: int) -> None:
    assert grammar.parse_days(text) == days


@pytest.mark.parametrize("text", ["0", "-3", "soon", "3.5", "9999"])
def test_bad_days(text: str) -> None:
    with pytest.raises(UsageError) as info:
        grammar.parse_days(text)
    assert info.value.usage.startswith("/incident stats")


async def test_compute_refuses_a_bad_window(db: Database) -> None:
    async with db.session() as session:
        with pytest.raises(UsageError):
            await stats.compute(session, now=NOW, days=0)
