"""Plugs escalation into the bot: signal handlers, the scheduler's start/stop, `python -m bot check`.

Signal handlers run inside the Slack listener that published them, so each one only starts a task
(the page DMs must not delay the reply to `/incident declare`); IncidentChannelReady's and
IncidentResolved's are the exceptions, published from a task of their own. The tasks are kept and awaited at
shutdown; one interrupted anyway is finished by the next process once its claim's lease ends.
"""

from __future__ import annotations

import functools
import logging
import os
from datetime import UTC, datetime, timedelta
from typing import Any

from bot.clock import Clock
from bot.config import Severity
from bot.deps import Deps, warning_check
from bot.escalation import oncall as oncall_rules
from bot.escalation import policy
from bot.escalation.flows import Escalator
from bot.escalation.models import Page
from bot.escalation.pagerduty import PagerDuty
from bot.escalation.pages.records import Delivery
from bot.escalation.ports import Pager
from bot.escalation.scheduler import EscalationScheduler
from bot.settings import Settings
from bot.signals import (
    IncidentAcknowledged,
    IncidentChannelReady,
    IncidentDeclared,
    IncidentResolved,
    IncidentSeverityChanged,
)

log = logging.getLogger(__name__)

# Longer than the sweep (30 s) plus a retry back-off: past this, pages are stuck, not just queued.
OVERDUE_WARNING = timedelta(minutes=5)


def setup(deps: Deps, *, pager: Pager) -> Escalator:
    """The escalator and its scheduler on `deps`, paging through `pager` (the Slack adapter, or a test's fake)."""
    config = deps.settings.config
    pagerduty = None
    if config.escalation.pagerduty is not None:
        pagerduty = PagerDuty.from_config(config.escalation.pagerduty, http=deps.http)
    metrics = deps.metrics

    def count(page: Page, delivery: Delivery) -> None:
        if delivery.sent_to or delivery.via:  # a DM, or PagerDuty took it: somebody is paged
            metrics.page_sent(late=page.late)
        else:
            metrics.page_failed()

    escalator = Escalator(
        db=deps.db,
        pager_db=deps.db.for_pager(),  # its own pool: a page's path to its DM never waits behind requests'
        clock=deps.clock,
        pager=pager,
        config=config,
        pagerduty=pagerduty,
        on_page=count,
        priority=deps.priority,
    )
    if not escalator.pages_anyone:
        log.warning("escalation names nobody (only `oncall`, and oncall.rotation is not set): no pages are sent")
    scheduler = EscalationScheduler(escalator)
    deps.escalator = escalator
    deps.scheduler = scheduler
    _subscribe(deps, escalator)
    _start_and_stop(deps, scheduler)
    deps.health_probes["escalation:timers"] = functools.partial(_timers_health, deps.clock, escalator, scheduler)
    return escalator


def _subscribe(deps: Deps, escalator: Escalator) -> None:
    background = deps.background

    async def on_declared(event: IncidentDeclared) -> None:
        if event.severity and not escalator.plans_for(Severity(event.severity)):
            return  # nothing to plan, so nothing to read (a raised severity plans its own reminder)
        background.spawn(escalator.incident_declared(event.incident_id), f"page INC-{event.incident_id}")

    async def on_channel_ready(event: IncidentChannelReady) -> None:
        await escalator.channel_ready(event.incident_id)  # published from a task already; see the signal

    async def on_acknowledged(event: IncidentAcknowledged) -> None:
        if event.actor:
            background.spawn(
                escalator.incident_acknowledged(event.incident_id, user=event.actor), f"ack INC-{event.incident_id}"
            )

    async def on_severity(event: IncidentSeverityChanged) -> None:
        background.spawn(escalator.severity_changed(event.incident_id), f"re-plan INC-{event.incident_id}")

    async def on_resolved(event: IncidentResolved) -> None:
        await escalator.incident_resolved(event.incident_id, actor=event.actor)  # from a task; see the signal

    deps.bus.subscribe(IncidentDeclared, on_declared)
    deps.bus.subscribe(
        IncidentChannelReady,
        on_channel_ready,
        does="invite and mention the people paged before the channel existed",
    )
    deps.bus.subscribe(IncidentAcknowledged, on_acknowledged)
    deps.bus.subscribe(IncidentSeverityChanged, on_severity)
    deps.bus.subscribe(
        IncidentResolved, on_resolved, does="stop the pages, tell PagerDuty and plan the post-mortem chase"
    )


def _start_and_stop(deps: Deps, scheduler: EscalationScheduler) -> None:
    background = deps.background

    async def start() -> None:
        # Catching up after an outage can mean many overdue pages, each with Slack calls and 429
        # waits: run it in the background so the server listens (Slack, /health) meanwhile.
        # The claims make it safe to overlap with the first wake-ups.
        background.spawn(scheduler.start(), "catch up on overdue pages")

    async def stop() -> None:
        await background.drain()  # pages being sent finish; an interrupted one is resent after its lease
        await scheduler.stop()

    deps.on_start.append(start)
    deps.on_stop.append(stop)


async def _timers_health(clock: Clock, escalator: Escalator, scheduler: EscalationScheduler) -> dict[str, Any]:
    """/health: warn when a page or reminder has waited far past its time (nothing is sending)."""
    now = clock.now()
    due = await escalator.next_due()
    problems = []
    if due is not None and now - due > OVERDUE_WARNING:
        problems.append(f"a page or reminder is overdue since {due:%Y-%m-%d %H:%M:%S} UTC")
    if scheduler.last_error:
        problems.append(f"last run failed: {scheduler.last_error}")
    return warning_check(now, problems)


def check(settings: Settings) -> tuple[list[str], list[str], list[str]]:
    """For `python -m bot check`: what would make paging fail at 3 a.m."""
    config = settings.config
    errors: list[str] = []
    warnings: list[str] = []
    target = config.escalation.pagerduty
    if target is not None and not os.environ.get(target.routing_key_env, "").strip():
        errors.append(
            f"escalation.pagerduty: environment variable {target.routing_key_env} (the PagerDuty Events v2 "
            "routing key) is not set"
        )
    now = datetime.now(UTC)
    for n, override in enumerate(config.oncall.overrides):
        if override.end <= now:
            warnings.append(f"oncall.overrides.{n}: ended {override.end:%Y-%m-%d %H:%M} UTC; it can be removed")
    if config.oncall.rotation is not None and len(config.oncall.rotation.users) != len(
        set(config.oncall.rotation.users)
    ):
        warnings.append("oncall.rotation.users: someone is listed twice, so they are on call more often than the rest")
    for severity, rule in config.escalation.severity.items():
        if rule.levels is not None and rule.levels > len(config.escalation.levels):
            warnings.append(
                f"escalation.severity.{severity}.levels is {rule.levels} but only "
                f"{len(config.escalation.levels)} level(s) exist"
            )
    notes = ["escalation: " + " · ".join(policy.describe_all(config.escalation))]
    current, following = oncall_rules.now_and_next(config.oncall, now)
    if current.user is not None:
        until = f" until {current.end:%Y-%m-%d %H:%M} UTC, then {following.user}" if current.end and following else ""
        notes.append(f"on call now: {current.user}{until}")
    return errors, warnings, notes
