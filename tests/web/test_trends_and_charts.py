"""Weekly trends and the SVG charts, without a server: week buckets, private incidents counted
without their service, medians, and labels escaped inside the SVG."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from bot.config import Severity
from bot.incidents.models import Incident
from bot.postmortem import trends
from bot.web import charts

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)  # a Friday


def _incident(n: int, *, at: datetime, severity: str = "P2", service: str | None = "api", **kw: Any) -> Incident:
    return Incident(
        id=n, title=f"t{n}", severity=Severity(severity), service=service, declared_by="U0A", declared_at=at, **kw
    )


def test_weeks_severities_medians_and_private_services() -> None:
    this_monday = datetime(2026, 11, 16, tzinfo=UTC)
    rows = [
        _incident(
            1,
            at=this_monday + timedelta(hours=1),
            severity="P1",
            acknowledged_at=this_monday + timedelta(hours=1, minutes=4),
        ),
        _incident(
            2,
            at=this_monday + timedelta(days=2),
            acknowledged_at=this_monday + timedelta(days=2, minutes=10),
            resolved_at=this_monday + timedelta(days=2, hours=1),
        ),
        _incident(3, at=this_monday - timedelta(days=3), service="payments"),  # the week before
        _incident(4, at=this_monday - timedelta(days=30), service=None),  # older than 4 weeks
        _incident(5, at=this_monday + timedelta(days=1), service="secret-service"),
    ]
    result = trends.compute(rows, now=NOW, weeks=4, hidden={5})
    assert [w.start.isoformat() for w in result.weeks] == ["2026-10-26", "2026-11-02", "2026-11-09", "2026-11-16"]
    last = result.weeks[-1]
    assert last.by_severity == {"P1": 1, "P2": 2, "P3": 0, "P4": 0} and last.count == 3
    assert last.tta_median == timedelta(minutes=7) and last.ttr_median == timedelta(hours=1)
    assert result.weeks[-2].count == 1 and result.weeks[-2].tta_median is None
    assert result.total == 4
    assert result.by_service == [("api", 2), ("(private)", 1), ("payments", 1)]
    assert "secret-service" not in repr(result)


def test_charts_escape_labels_and_draw_one_shape_per_value() -> None:
    weeks = trends.compute(
        [_incident(1, at=NOW - timedelta(hours=1), severity="P1", acknowledged_at=NOW - timedelta(minutes=50))],
        now=NOW,
        weeks=3,
        hidden=set(),
    ).weeks
    bars = charts.per_week(weeks)
    assert bars.count("<title>week of") == 1 and "1 P1</title>" in bars and "<title>Incidents declared per week" in bars
    times = charts.times(weeks)
    assert times.count('<circle class="tta"') == 1 and '<circle class="ttr"' not in times
    services = charts.by_service([("<script>alert(1)</script>", 3), ("api", 1)])
    assert "<script>" not in services and "&lt;script&gt;" in services
    assert services.count('<rect class="svc"') == 2
    assert "style=" not in bars + times + services  # the CSP allows no inline style
    assert charts.short_minutes(7.5) == "7m 30s" and charts.short_minutes(150) == "2h 30m"
    assert charts.short_minutes(0) == "0" and charts.short_minutes(60 * 24 * 3) == "3d"


def test_the_timelines_fast_offset_matches_the_post_mortems() -> None:
    from bot.postmortem.text import fmt_offset
    from bot.web.timeline import offset

    samples = [0, 1, 59, 60, 61, 3599, 3600, 3661, 86399, 86400, 90061, 10**7, 0.5, 59.999, 3600.25]
    for seconds in samples:
        for sign in (1, -1):
            delta = timedelta(seconds=sign * seconds)
            assert offset(delta) == fmt_offset(delta), delta
