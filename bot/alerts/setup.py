"""Wiring of the alerts domain: the webhook routes, the processor and its start/stop hooks."""

from __future__ import annotations

from bot.alerts.flows import AlertProcessor
from bot.alerts.http import handler_for
from bot.alerts.sources import http as sources
from bot.deps import Deps
from bot.signals import IncidentResolved, IncidentSeverityChanged, IncidentStatusChanged


def setup(deps: Deps) -> None:
    processor = AlertProcessor(deps)
    deps.alerts = processor
    deps.http_routes.append(("POST", "/alerts/alertmanager", handler_for(deps, "alertmanager")))
    deps.http_routes.append(("POST", "/alerts/grafana", handler_for(deps, "grafana")))
    sources.setup(deps)  # POST /alerts/<name> for each alerts.sources entry
    # The alert message shows the linked incident's severity and status: keep it current.
    deps.bus.subscribe(IncidentResolved, processor.on_incident_changed, does="update the alert messages")
    deps.bus.subscribe(IncidentStatusChanged, processor.on_incident_changed)
    deps.bus.subscribe(IncidentSeverityChanged, processor.on_incident_changed)
    deps.on_start.append(processor.start)
    deps.on_stop.append(processor.stop)
