"""Plugs the status page in: its routes, signal handlers (declare, severity, resolve), timers, `check`."""

from __future__ import annotations

import functools
import logging
import os
from datetime import timedelta
from typing import Any

from bot.deps import Deps, warning_check
from bot.settings import Settings
from bot.signals import IncidentDeclared, IncidentResolved, IncidentSeverityChanged
from bot.statuspage import flows, gone, refusals, renames, service, web
from bot.statuspage.models import SyncAction
from bot.statuspage.ports import PublicChat
from bot.statuspage.runtime import StatusPage

log = logging.getLogger(__name__)

# Past the first few back-offs (30 s, 1, 2, 5 min): Statuspage is down or refuses us, not just slow.
OUTBOX_WARNING = timedelta(minutes=10)
# A row given up after refusals leaves something for a person to do on Statuspage: said for a day.
GIVEN_UP_WARNING = timedelta(days=1)


def setup(deps: Deps, *, chat: PublicChat) -> None:
    """The page, its routes and timers, when bot.yml has `status_page:`; `chat` reminds the incident channel."""
    config = deps.settings.config.status_page
    if config is None:
        return
    page = StatusPage.from_deps(deps, config)
    page.chat = chat
    deps.status_page = page
    deps.http_routes.extend(web.routes(page))
    background = deps.background

    async def on_declared(event: IncidentDeclared) -> None:
        background.spawn(
            flows.plan_reminder(deps, incident_id=event.incident_id), f"plan INC-{event.incident_id}'s publish reminder"
        )

    async def on_severity(event: IncidentSeverityChanged) -> None:
        background.spawn(
            flows.plan_reminder(deps, incident_id=event.incident_id),
            f"re-plan INC-{event.incident_id}'s publish reminder",
        )

    async def on_resolved(event: IncidentResolved) -> None:
        background.spawn(
            flows.incident_resolved(deps, incident_id=event.incident_id, actor=event.actor),
            f"publish INC-{event.incident_id}'s resolution",
        )

    deps.bus.subscribe(IncidentDeclared, on_declared)
    deps.bus.subscribe(IncidentSeverityChanged, on_severity)
    deps.bus.subscribe(IncidentResolved, on_resolved, does="publish the resolution on the status page")

    async def start() -> None:
        await _apply_renames(deps)
        await page.refresh()  # the first reader never waits for a build
        await page.start()

    deps.on_start.append(start)
    deps.on_stop.append(page.stop)
    if page.syncing:
        deps.health_probes["statuspage:outbox"] = functools.partial(outbox_health, deps)


async def _apply_renames(deps: Deps) -> None:
    config = deps.settings.config.status_page
    if config is None or not config.renamed:
        return
    async with deps.db.session() as session:
        days, updates = await renames.apply(session, renamed=config.renamed)
    if days or updates:
        log.info("status page: renamed components took %d days of history and %d published updates", days, updates)


async def outbox_health(deps: Deps) -> dict[str, Any]:
    """/health warns (never fails: the bot works on) when an update has waited for Statuspage too long."""
    now = deps.clock.now()
    async with deps.db.session() as session:
        oldest = await service.oldest_pending_sync(session)
        given_up = await refusals.given_up(session, since=now - GIVEN_UP_WARNING)
        missing = await gone.page_missing(session)
    problems = []
    if missing is not None:  # configuration: said at once, and precisely
        error, waiting = missing
        problems.append(f"{error}; {waiting} incident(s) have public updates waiting for it")
    if oldest is not None and now - oldest > OUTBOX_WARNING:
        problems.append(f"a public update has waited for Statuspage since {oldest:%Y-%m-%d %H:%M} UTC")
    problems += [_BY_HAND[row.action].format(ref=f"INC-{row.incident_id}") for row in given_up]
    return warning_check(now, problems)


# What /health says of an outbox row given up after refusals (`refusals`): what to do on Statuspage by hand.
_BY_HAND = {
    SyncAction.UPDATE: "Statuspage refused a public update of {ref}: it is not there, to post by hand",
    SyncAction.EDIT: "Statuspage refused a correction of {ref}: the old text is still there, to correct by hand",
    SyncAction.WITHDRAW: "Statuspage refused to delete {ref} (withdrawn): it is still there, to delete by hand",
}


def check(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    """For `python -m bot check`: the component names were checked when bot.yml loaded; here, the rest."""
    page = settings.config.status_page
    if page is None:
        return [], [], []
    errors: list[str] = []
    warnings: list[str] = []
    services = settings.config.services
    for name, members in page.components.items():
        unprobed = [s for s in members if not services[s].health_url]
        if unprobed:
            warnings.append(
                f"status_page.components.{name}: {', '.join(unprobed)} has no health_url, so only published "
                "incidents colour its bars"
            )
    target = page.statuspage
    if target is not None:
        if not os.environ.get(target.api_key_env, "").strip():
            errors.append(
                f"status_page.statuspage: environment variable {target.api_key_env} (the Statuspage API key) is not set"
            )
        mapped = {s for members in page.components.values() for s in members}
        warnings += [
            f"status_page.statuspage.components: service {service!r} has no Statuspage component id; "
            "its status is not set on Statuspage"
            for service in sorted(mapped - set(target.components))
        ]
    notes = [f"status page: {len(page.components)} component(s) at /status-page"]
    if target is not None:
        notes.append(f"Atlassian Statuspage: page {target.page_id}, {len(target.components)} component id(s)")
    return errors, warnings, notes
