"""The status page as bytes: HTML, summary.json and the Atom feed, each with its ETag, built at once.

Built off the event loop (`asyncio.to_thread`) from rows read beforehand; served as is to every
reader until the next rebuild. Jinja2 autoescapes the HTML and the feed, so a published message
can hold `<script>` and is shown as text.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from email.utils import format_datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from jinja2 import Environment, FileSystemLoader, select_autoescape

from bot.config import StatusPageConfig
from bot.incidents.models import Incident
from bot.statuspage.models import ComponentDay, ComponentStatus, PublicUpdate
from bot.statuspage.public import Component, PublicIncident, View, public_id, view

HERE = Path(__file__).resolve().parent
CSS = (HERE / "static" / "status.css").read_bytes()
PAGE_ID = public_id("page", "status")  # without PUBLIC_URL: nothing tells this page from another


def page_id(public_url: str | None) -> str:
    """The page's id in summary.json and its feed: from its address, so two installations' pages (and
    their feeds' entries, which readers de-duplicate by id) are never taken for one another."""
    return public_id("page", public_url) if public_url else PAGE_ID


def feed_tag(public_url: str | None) -> str:
    """The Atom ids' prefix: a tag URI (RFC 4151) minted under the page's own host when it is known."""
    host = urlsplit(public_url).hostname if public_url else None
    return f"tag:{host},2026:status-page" if host else f"tag:status-page,2026:{PAGE_ID}"


BASE = "/status-page"
FEED_ENTRIES = 50

_env = Environment(
    loader=FileSystemLoader(HERE / "templates"),
    autoescape=select_autoescape(["html", "xml", "j2"], default=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


@dataclass(frozen=True)
class Body:
    data: bytes
    etag: str
    content_type: str
    gzipped: bytes  # compressed once per rebuild, not per reader
    gzip_etag: str
    last_modified: str  # HTTP date: from the database, so the same on every replica and across restarts


@dataclass(frozen=True)
class Snapshot:
    built_at: datetime
    html: Body
    summary: Body
    atom: Body
    css: Body
    view: View
    stamp: datetime  # when what the page shows last changed: summary.json's `updated_at`s


def _body(data: bytes, content_type: str, modified: datetime) -> Body:
    digest = hashlib.sha256(data).hexdigest()[:32]
    return Body(
        data=data,
        etag=f'"{digest}"',
        content_type=content_type,
        gzipped=gzip.compress(data, compresslevel=6, mtime=0),
        gzip_etag=f'"{digest}-gz"',  # another representation, another strong ETag
        last_modified=format_datetime(modified.astimezone(UTC).replace(microsecond=0), usegmt=True),
    )


def iso(when: datetime | None) -> str | None:
    return None if when is None else when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _said(update: PublicUpdate | None, component: str) -> str:
    return (update.status_of(component) if update else ComponentStatus.OPERATIONAL).value


def _update_json(
    incident: PublicIncident, update: PublicUpdate, before: PublicUpdate | None, names: dict[str, str]
) -> dict[str, Any]:
    when = iso(update.published_at)
    return {
        "id": public_id("update", update.id),
        "status": update.status,
        "body": update.message,
        "incident_id": incident.id,
        "created_at": when,
        "updated_at": iso(update.edited_at) or when,  # a correction keeps the update's time, as on Statuspage
        "display_at": when,
        "affected_components": [
            {"code": names[c], "name": c, "old_status": _said(before, c), "new_status": _said(update, c)}
            for c in update.components
            if c in names
        ],
    }


def _component_json(c: Component, stamp: str | None, page: str) -> dict[str, Any]:
    # Statuspage requires `created_at`: the first day the page has anything on the component, else now.
    known = next((b.day for b in c.bars if b.status is not None), None)
    created = iso(datetime.combine(known, time(), UTC)) if known else stamp
    return {
        "id": c.id,
        "name": c.name,
        "status": c.status.value,
        "position": c.position,
        "description": None,
        "group_id": None,
        "group": False,
        "only_show_if_degraded": False,
        "showcase": True,
        "start_date": None,
        "page_id": page,
        "created_at": created,
        "updated_at": stamp,
    }


def summary(v: View, *, url: str = BASE, page: str = PAGE_ID, stamp: str | None = None) -> dict[str, Any]:
    """Atlassian Statuspage's public `/api/v2/summary.json`: unresolved incidents only, as there.
    `url`: the page's address, absolute when PUBLIC_URL says where the bot is; `page`: its id;
    `stamp`: the page's and components' `updated_at`, when they last changed (the build's time if not given)."""
    names = {c.name: c.id for c in v.components}
    stamp = stamp or iso(v.now)
    components = {c.name: _component_json(c, stamp, page) for c in v.components}
    return {
        "page": {"id": page, "name": v.title, "url": url, "time_zone": "Etc/UTC", "updated_at": stamp},
        "status": {"indicator": v.status.value, "description": v.description},
        "components": list(components.values()),
        "incidents": [
            {
                "id": i.id,
                "name": i.name,
                "status": i.status,
                "impact": i.impact.value,
                "shortlink": f"{url}#incident-{i.id}",
                "created_at": iso(i.started_at),
                "updated_at": iso(i.updated_at),
                "started_at": iso(i.started_at),
                "monitoring_at": iso(i.first_at("monitoring")),
                "resolved_at": iso(i.resolved_at),
                "page_id": page,
                "incident_updates": [
                    _update_json(i, u, i.updates[n - 1] if n else None, names)
                    for n, u in reversed(list(enumerate(i.updates)))
                ],
                "components": [components[c] for c in i.components if c in components],
            }
            for i in v.open
        ],
        "scheduled_maintenances": [],
    }


def _feed_entries(v: View) -> list[dict[str, Any]]:
    """Newest published first. An entry's `updated` is its last significant change (RFC 4287 4.2.15): a
    correction of its text moves it, so feed readers show the corrected text; `published` stays."""
    pairs = [(incident, update) for incident in [*v.open, *v.history] for update in incident.updates]
    pairs.sort(key=lambda pair: (pair[1].published_at, pair[1].id or 0), reverse=True)
    return [
        {"incident": i, "change": u, "when": u.published_at, "updated": u.edited_at or u.published_at}
        for i, u in pairs[:FEED_ENTRIES]
    ]


def build(
    *,
    config: StatusPageConfig,
    rows: Sequence[tuple[Incident, PublicUpdate]],
    days: Sequence[ComponentDay],
    now: datetime,
    stale_after: timedelta,
    public_url: str | None = None,
    layout_since: datetime,
    left_at: datetime | None = None,
) -> Snapshot:
    """Every date a reader or poller is told (`updated_at`s, Last-Modified) comes from the rows, never from
    when or where the build ran: replicas behind one address agree, and a restart moves nothing."""
    v = view(
        title=config.title,
        components=list(config.components),
        rows=rows,
        days=days,
        now=now,
        stale_after=stale_after,
        id_names={name: config.id_name(name) for name in config.components},
        left_at=left_at,
        layout_since=layout_since,
    )
    stamp = v.changed_at or layout_since  # never older than the layout's first build (`layout.py`)
    html = _env.get_template("page.html.j2").render(v=v, iso=iso, base=BASE)
    url = f"{public_url or ''}{BASE}"  # feeds and JSON are read elsewhere: absolute links when we know the host
    entries = _feed_entries(v)
    feed = _env.get_template("history.atom.j2").render(
        v=v,
        iso=iso,
        base=url,
        tag=feed_tag(public_url),
        entries=entries,
        uid=public_id,
        updated=max((e["updated"] for e in entries), default=stamp),  # the feed's: its latest change
    )
    summary_data = json.dumps(summary(v, url=url, page=page_id(public_url), stamp=iso(stamp)), separators=(",", ":"))
    return Snapshot(
        built_at=now,
        html=_body(html.encode(), "text/html; charset=utf-8", _html_modified(stamp, days, now)),
        summary=_body(summary_data.encode(), "application/json", stamp),
        atom=_body(feed.encode(), "application/atom+xml; charset=utf-8", stamp),
        css=_body(CSS, "text/css; charset=utf-8", stamp),
        view=v,
        stamp=stamp,
    )


def _html_modified(stamp: datetime, days: Sequence[ComponentDay], now: datetime) -> datetime:
    """The HTML page also shows each day's probe counts (moved by every probe) and a bar per day (a new
    one at midnight): its Last-Modified follows those too, still from the rows and the date alone."""
    midnight = datetime.combine(now.astimezone(UTC).date(), time(), UTC)
    return max([stamp, midnight, *(day.last_at for day in days)])
