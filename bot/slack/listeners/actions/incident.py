"""Buttons on the incident summary (and on pages): Acknowledge, Update status, Resolve, Retry setup."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.exceptions import InvalidState, UsageError
from bot.incidents import access, flows
from bot.incidents.models import Incident
from bot.ops.clicks import refused
from bot.slack import blocks
from bot.slack.api import call
from bot.slack.listeners.commands.incident import ack_reply, offer_retry
from bot.slack.listeners.common import guarded


def incident_number(body: dict[str, Any]) -> int:
    value = str((body.get("actions") or [{}])[0].get("value", ""))
    if not (value.isascii() and value.isdigit() and len(value) < 10):
        raise UsageError(
            "This button carries no incident number; it may come from an old message.", usage="/incident list"
        )
    return int(value)


async def clicked_incident(
    deps: Deps, body: dict[str, Any], what: str, *, number: int | None = None, in_its_channel: bool = False
) -> Incident:
    """The incident a button names, re-read and checked: the clicker must see it, and a click from a
    message (not a DM or an ephemeral) must come from that incident's own summary (or, `in_its_channel`,
    from any message in its channel, as the alert-cleared notice); else it is refused and audited."""
    user = body["user"]["id"]
    number = incident_number(body) if number is None else number
    incident = await access.find(deps, number=number, person=user)
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    ts = str((body.get("message") or {}).get("ts") or container.get("message_ts") or "")
    ours = {(incident.channel_id, incident.summary_ts), (incident.announcement_channel, incident.announcement_ts)}
    if in_its_channel:
        ours = {(incident.channel_id, ts)}
    if channel and ts and not container.get("is_ephemeral") and (channel, ts) not in ours:
        await refused(
            deps,
            actor=user,
            what=what,
            claimed=number,
            reason=f"the button is not on {incident.ref}'s summary",
            incident_id=incident.id,
        )
        raise access.not_found(number)
    return incident


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(blocks.ActionId.ACK)
    async def acknowledge(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            number = (await clicked_incident(deps, body, "acknowledge")).id or 0
            user = body["user"]["id"]
            outcome = await flows.acknowledge(deps, incident_id=number, actor=user)
            await respond(text=ack_reply(outcome), response_type="ephemeral", replace_original=False)

        await guarded(respond, work)

    forms = {
        blocks.ActionId.UPDATE: ("open the update form", blocks.update_modal),
        blocks.ActionId.RESOLVE: ("open the resolve form", blocks.resolve_modal),
    }

    async def open_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        """Update status / Resolve: a form for an open incident (the trigger expires in 3 s: open it first)."""
        await ack()
        step, build = forms[body["actions"][0]["action_id"]]

        async def work() -> None:
            incident = await clicked_incident(deps, body, "open a form")
            if not incident.is_open:
                raise InvalidState(f"{incident.ref} is resolved already.")
            await call(step, client.views_open(trigger_id=body["trigger_id"], view=build(incident)))

        await guarded(respond, work)

    for action_id in forms:
        app.action(action_id)(open_form)

    @app.action(blocks.ActionId.RETRY_SETUP)
    async def retry_setup(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            # Retry setup invites the clicker: only someone who may see the incident may press it.
            number = (await access.find(deps, number=incident_number(body), person=body["user"]["id"])).id or 0
            outcome = await flows.finish_setup(deps, incident_id=number, actor=body["user"]["id"], by_hand=True)
            # The button may sit on a message everyone sees (the alert card): replace only an ephemeral one.
            replace = bool((body.get("container") or {}).get("is_ephemeral"))
            if outcome.problems:  # the declaration was announced once; a retry only says what is still missing
                await offer_retry(respond, outcome, replace=replace)
            else:
                incident = outcome.incident
                await respond(
                    text=f"✅ {incident.ref} is set up: <#{incident.channel_id}>",
                    response_type="ephemeral",
                    replace_original=replace,
                )

        await guarded(respond, work)
