"""Where Slack requests land, grouped by surface (commands, actions, views, events)."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.slack.listeners import observe, replay, respond
from bot.slack.listeners.actions import alerts as alert_actions
from bot.slack.listeners.actions import escalation as escalation_actions
from bot.slack.listeners.actions import followups as followup_actions
from bot.slack.listeners.actions import incident as incident_actions
from bot.slack.listeners.actions import ops as ops_actions
from bot.slack.listeners.actions import playbooks as playbook_actions
from bot.slack.listeners.actions import statuspage as statuspage_actions
from bot.slack.listeners.commands import incident as incident_command
from bot.slack.listeners.commands import ops as ops_command
from bot.slack.listeners.events import timeline as timeline_events
from bot.slack.listeners.views import incident as incident_views
from bot.slack.listeners.views import statuspage as statuspage_views

# Each module has register(app, deps). Other domains append theirs here.
MODULES = [
    observe,
    respond,
    replay,
    alert_actions,
    incident_command,
    incident_actions,
    incident_views,
    timeline_events,
    playbook_actions,
    escalation_actions,
    ops_command,
    ops_actions,
    followup_actions,
    statuspage_actions,
    statuspage_views,
]


def register(app: AsyncApp, deps: Deps) -> None:
    for module in MODULES:
        module.register(app, deps)
