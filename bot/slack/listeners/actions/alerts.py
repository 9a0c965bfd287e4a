"""Alert buttons: Declare incident (opens the prefilled form) and Resolve."""

from __future__ import annotations

import logging
from dataclasses import asdict
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts import declaring
from bot.alerts import flows as alert_flows
from bot.alerts.models import AlertGroup
from bot.deps import Deps
from bot.exceptions import NotFound, UsageError
from bot.incidents import access
from bot.incidents.grammar import MAX_TITLE
from bot.slack import blocks
from bot.slack.adapters.alerts import AlertActionId
from bot.slack.api import call
from bot.slack.listeners.actions.incident import clicked_incident
from bot.slack.listeners.common import form_playbooks, guarded, known
from bot.slack.listeners.views.incident import ack_declare_form, after_submit
from bot.slack.text import clip

log = logging.getLogger(__name__)


class AlertCallbackId:
    DECLARE = "alert_declare_submit"  # private_metadata: alert group id


# --- the declare form ------------------------------------------------------------------------------


def _option(options: list[dict[str, Any]], value: str | None) -> dict[str, Any] | None:
    return next((o for o in options if o.get("value") == value), None) if value else None


def declare_modal(
    group: AlertGroup, description: str, *, services: list[str], playbooks: list[tuple[str, str]]
) -> dict[str, Any]:
    """The incident declare form, filled in from the alert (everything can be changed before submitting)."""
    view = blocks.declare_modal(services=services, playbooks=playbooks, channel_id="")
    view["callback_id"] = AlertCallbackId.DECLARE
    view["private_metadata"] = str(group.id)
    initial = {
        "title": clip(group.title or "Alert", MAX_TITLE),
        "description": description,
    }
    for block in view["blocks"]:
        element = block.get("element", {})
        block_id = block.get("block_id")
        if block_id in initial and initial[block_id]:
            element["initial_value"] = initial[block_id]
        elif block_id == "severity":
            element["initial_option"] = _option(element.get("options", []), group.proposed_severity) or element.get(
                "initial_option"
            )
        elif block_id in ("service", "playbook"):
            proposed = group.proposed_service if block_id == "service" else group.proposed_playbook
            option = _option(element.get("options", []), proposed)
            if option is not None:
                element["initial_option"] = option
    return view


def _number(body: dict[str, Any]) -> int:
    value = str((body.get("actions") or [{}])[0].get("value", ""))
    if not (value.isascii() and value.isdigit() and len(value) < 10):
        raise UsageError("This button carries no number; it may come from an old message.", usage="/incident list")
    return int(value)


# --- registration ---------------------------------------------------------------------------------


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(AlertActionId.DECLARE)
    async def open_declare(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            group_id = _number(body)
            group, description = await alert_flows.proposal_modal_values(deps, group_id=group_id)
            if group.incident_id is not None:
                user = body["user"]["id"]
                try:  # its number only to those who may see it
                    ref = (await access.find(deps, number=group.incident_id, person=user)).ref
                except NotFound:
                    ref = "an incident"
                await respond(
                    text=f"This alert is already {ref}.",
                    response_type="ephemeral",
                    replace_original=False,
                )
                return
            view = declare_modal(
                group, description, services=sorted(deps.settings.config.services), playbooks=form_playbooks(deps)
            )
            await call("open the declare form", client.views_open(trigger_id=body["trigger_id"], view=view))

        await guarded(respond, work)

    @app.view(AlertCallbackId.DECLARE)
    async def declare_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        form = await ack_declare_form(ack, view, known=known(deps))
        if form is None:
            return
        user = body["user"]["id"]
        work = declaring.declare_from_alert(
            deps, group_id=int(view.get("private_metadata") or 0), actor=user, **asdict(form)
        )
        await after_submit(client, user=user, channel=None, work=work, declared="declared from the alert")

    @app.action(AlertActionId.RESOLVE)
    async def resolve(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            incident = await clicked_incident(deps, body, "alert resolve", number=_number(body))
            outcome = await alert_flows.resolve_from_alert(deps, incident_id=incident.id or 0, actor=body["user"]["id"])
            problems = f"\n⚠️ {'; '.join(outcome.problems)}" if outcome.problems else ""
            await respond(
                text=f"✅ You resolved {outcome.incident.ref}.{problems}",
                response_type="ephemeral",
                replace_original=False,
            )

        await guarded(respond, work)
