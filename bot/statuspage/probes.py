"""The status page's own health probes: the services behind each public component, counted per day.

The same checker as `/status` (`bot.health.checker`), on the page's own schedule (`probe_every`), so
the 90-day bars come from stored data and not from whoever happened to run `/status`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from bot.health.checker import check_all
from bot.health.classify import HealthState
from bot.statuspage import health_days
from bot.statuspage.models import ComponentStatus

if TYPE_CHECKING:
    from bot.deps import Deps

TO_STATUS = {
    HealthState.HEALTHY: ComponentStatus.OPERATIONAL,
    HealthState.DEGRADED: ComponentStatus.DEGRADED,
    HealthState.FAILING: ComponentStatus.MAJOR,
    HealthState.UNREACHABLE: ComponentStatus.MAJOR,
}


async def probe(deps: Deps) -> None:
    """Check the services behind each public component and count the outcome on today's bar."""
    page = deps.status_page
    if page is None:
        return
    services = deps.settings.config.services
    names = sorted({s for members in page.config.components.values() for s in members if s in services})
    if not names:
        return
    results = {r.service: r.state for r in await check_all(deps.http, services, only=names, clock=deps.clock)}
    now = deps.clock.now()
    async with deps.db.session() as session:
        for component, members in page.config.components.items():
            judged = [TO_STATUS[results[s]] for s in members if results.get(s) in TO_STATUS]
            if judged:
                worst = max(judged, key=lambda s: s.rank)
                await health_days.record_probe(
                    session, component=component, status=worst, at=now, stale_after=page.stale_after
                )
    await page.refresh()
