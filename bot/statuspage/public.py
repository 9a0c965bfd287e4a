"""The public view of the status page, from stored rows: components now, 90 daily bars, incidents.

Pure functions (no database, no I/O): `snapshot.build` feeds them rows, the HTML page, the Atom
feed and summary.json all render what they return. Only `PublicUpdate` rows and component health
days reach here, never an incident's internal fields beyond its open/resolved state.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from bot.clock import utc
from bot.incidents.models import Incident
from bot.statuspage.models import ComponentDay, ComponentStatus, Impact, PublicUpdate

DAYS = 90
INDICATOR = {
    ComponentStatus.OPERATIONAL: Impact.NONE,
    ComponentStatus.DEGRADED: Impact.MINOR,
    ComponentStatus.PARTIAL: Impact.MAJOR,
    ComponentStatus.MAJOR: Impact.CRITICAL,
}
DESCRIPTION = {
    Impact.NONE: "All Systems Operational",
    Impact.MINOR: "Minor Service Outage",
    Impact.MAJOR: "Partial System Outage",
    Impact.CRITICAL: "Major Service Outage",
}


def public_id(kind: str, value: object) -> str:
    """A stable id. Anyone can hash small numbers, so `value` must say nothing the page does not: a public
    incident is named by its first public update, not by its incident number (which counts private ones)."""
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class Bar:
    day: date
    status: ComponentStatus | None  # None: nothing known that day
    probes: int
    failed: int
    incidents: tuple[str, ...] = ()

    @property
    def css(self) -> str:
        return "none" if self.status is None else self.status.value

    @property
    def tooltip(self) -> str:
        what = "No data" if self.status is None else self.status.label
        parts = [f"{self.day:%d %b %Y}: {what}"]
        if self.probes:
            parts.append(f"{self.probes} checks, {self.failed} failed")
        parts += list(self.incidents)
        return " · ".join(parts)


@dataclass(frozen=True)
class Component:
    id: str
    name: str
    position: int
    status: ComponentStatus
    bars: tuple[Bar, ...]
    uptime: float | None  # share of checks that passed over the 90 days
    changed_at: datetime | None = None  # when its probed status last changed, or went stale


@dataclass
class PublicIncident:
    id: str
    name: str
    status: str
    impact: Impact
    updates: list[PublicUpdate]  # oldest first
    resolved_at: datetime | None
    components: list[str] = field(default_factory=list)

    @property
    def is_open(self) -> bool:
        return self.status != "resolved"

    @property
    def started_at(self) -> datetime:
        return utc(self.updates[0].published_at)

    @property
    def last_published_at(self) -> datetime:
        return utc(self.updates[-1].published_at)

    @property
    def updated_at(self) -> datetime:
        """Its last change: the last publish, or a correction since of any of its updates (as on Statuspage)."""
        return max(utc(u.edited_at or u.published_at) for u in self.updates)

    def first_at(self, status: str) -> datetime | None:
        return next((utc(u.published_at) for u in self.updates if u.status == status), None)

    def active_on(self, day: date, now: datetime) -> bool:
        end = self.resolved_at or now
        return self.started_at.date() <= day <= end.date()


@dataclass(frozen=True)
class View:
    title: str
    now: datetime
    status: Impact
    description: str
    components: list[Component]
    open: list[PublicIncident]
    history: list[PublicIncident]
    changed_at: datetime | None = None  # when what the page shows last changed: its stamp, the same everywhere


def incidents_of(rows: Sequence[tuple[Incident, PublicUpdate]]) -> list[PublicIncident]:
    grouped: dict[int, list[PublicUpdate]] = defaultdict(list)
    for incident, update in rows:
        grouped[incident.id or 0].append(update)
    out = []
    for updates in grouped.values():
        last = updates[-1]
        resolved = next((utc(u.published_at) for u in updates if u.status == "resolved"), None)
        out.append(
            PublicIncident(
                id=public_id("incident", min(u.id or 0 for u in updates)),
                name=last.title,
                status=last.status,
                impact=Impact(last.impact),
                updates=updates,
                resolved_at=resolved,
                components=list(last.components),
            )
        )
    return sorted(out, key=lambda i: i.last_published_at, reverse=True)  # a correction does not reorder the page


def _probe_status(day: ComponentDay | None) -> ComponentStatus | None:
    if day is None or day.probes == 0:
        return None
    if day.down * 4 >= day.probes:
        return ComponentStatus.MAJOR
    if day.down:
        return ComponentStatus.PARTIAL
    if day.degraded:
        return ComponentStatus.DEGRADED
    return ComponentStatus.OPERATIONAL


def _worst(*statuses: ComponentStatus | None) -> ComponentStatus | None:
    known = [s for s in statuses if s is not None]
    return max(known, key=lambda s: s.rank) if known else None


def _incident_status(incident: PublicIncident, component: str, day: date) -> ComponentStatus | None:
    """The worst the incident told the public of the component during `day`: the update in force when the
    day began and those published on it (a later escalation does not recolour the days before it)."""
    earlier = [u for u in incident.updates if utc(u.published_at).date() < day][-1:]
    that_day = [u for u in incident.updates if utc(u.published_at).date() == day]
    impacts = [Impact(u.impact) for u in earlier + that_day if component in u.components and u.status != "resolved"]
    return max(impacts, key=lambda i: i.rank).component_status if impacts else None


def _status_now(incident: PublicIncident, component: str) -> ComponentStatus | None:
    last = incident.updates[-1]
    return Impact(last.impact).component_status if component in last.components else None


def _probed(
    latest: ComponentDay | None, published: ComponentStatus | None, now: datetime, stale_after: timedelta
) -> tuple[ComponentStatus | None, datetime | None]:
    """The probed status still in force, and when the component's shown status last changed because of it.

    A probe gone stale stops counting at last probe + `stale_after`, with no probe to say so: that moment
    dates the page only when the probe was what the page showed (worse than what is published); a stale
    "operational" leaves the page as it was, and so does one that an incident's published status covers."""
    if latest is None:
        return None, None
    status, changed = ComponentStatus(latest.last_status), utc(latest.changed_at or latest.last_at)
    stale_at = utc(latest.last_at) + stale_after
    if now <= stale_at:
        return status, changed
    shown_by_probe = status.rank > (published or ComponentStatus.OPERATIONAL).rank
    return None, stale_at if shown_by_probe else changed


def component_view(
    name: str,
    position: int,
    days: dict[date, ComponentDay],
    incidents: list[PublicIncident],
    now: datetime,
    stale_after: timedelta,
    id_name: str | None = None,
) -> Component:
    bars = []
    for offset in range(DAYS - 1, -1, -1):
        day = (now - timedelta(days=offset)).date()
        touching = [i for i in incidents if i.active_on(day, now) and _incident_status(i, name, day) is not None]
        from_incidents = _worst(*(_incident_status(i, name, day) for i in touching))
        row = days.get(day)
        bars.append(
            Bar(
                day=day,
                status=_worst(_probe_status(row), from_incidents),
                probes=row.probes if row else 0,
                failed=row.down if row else 0,
                incidents=tuple(i.name for i in touching),
            )
        )
    published = _worst(*(_status_now(i, name) for i in incidents if i.is_open))
    probed, changed = _probed(max(days.values(), key=lambda d: d.day, default=None), published, now, stale_after)
    probes = sum(d.probes for d in days.values())
    uptime = None if not probes else 1 - sum(d.down for d in days.values()) / probes
    return Component(
        id=public_id("component", id_name or name),
        name=name,
        position=position,
        status=_worst(probed, published) or ComponentStatus.OPERATIONAL,
        bars=tuple(bars),
        uptime=uptime,
        changed_at=changed,
    )


def view(
    *,
    title: str,
    components: Sequence[str],
    rows: Sequence[tuple[Incident, PublicUpdate]],
    days: Sequence[ComponentDay],
    now: datetime,
    stale_after: timedelta,
    id_names: Mapping[str, str] | None = None,
    left_at: datetime | None = None,
    layout_since: datetime | None = None,
) -> View:
    """`id_names`: the name each component's public id is made from, when not its own (a rename);
    `left_at`: when a public incident last left the page (withdrawn, or out of the history); `layout_since`:
    when the page was first served as configured (`bot/statuspage/layout.py`), its oldest possible date."""
    incidents = incidents_of(rows)
    by_component: dict[str, dict[date, ComponentDay]] = defaultdict(dict)
    for day in days:
        by_component[day.component][day.day] = day
    comps = [
        component_view(name, n + 1, by_component.get(name, {}), incidents, now, stale_after, (id_names or {}).get(name))
        for n, name in enumerate(components)
    ]
    open_incidents = [i for i in incidents if i.is_open]
    levels = [INDICATOR[c.status] for c in comps] + [i.impact for i in open_incidents]
    status = max(levels, key=lambda i: i.rank, default=Impact.NONE)
    changes = (
        [i.updated_at for i in incidents] + [c.changed_at for c in comps if c.changed_at] + [left_at, layout_since]
    )
    return View(
        title=title,
        now=now,
        status=status,
        description=DESCRIPTION[status],
        components=comps,
        open=open_incidents,
        history=[i for i in incidents if not i.is_open],
        changed_at=max((when for when in changes if when is not None), default=None),
    )
