"""Buttons on the incident summary (and on pages): Acknowledge, Update status, Resolve, Retry setup."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.exceptions import InvalidState, UsageError
from bot.incidents import access, flows, service
from bot.incidents.models import Incident
from bot.ops.clicks import refused
from bot.slack import blocks
from bot.slack.listeners.commands.incident import ack_reply, offer_retry
from bot.slack.listeners.common import guarded
from bot.slack.listeners.forms import open_then_fill


def incident_number(body: dict[str, Any]) -> int:
    value = str((body.get("actions") or [{}])[0].get("value", ""))
    if not (value.isascii() and value.isdigit() and len(value) < 10):
        raise UsageError(
            "This button carries no incident number; it may come from an old message.", usage="/incident list"
        )
    return int(value)


def clicked_message(body: dict[str, Any]) -> tuple[str, str, bool]:
    """(channel, ts, ephemeral) of the message a click came from, as far as Slack says ("" when it does not)."""
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    ts = str((body.get("message") or {}).get("ts") or container.get("message_ts") or "")
    return channel, ts, bool(container.get("is_ephemeral"))


async def clicked_incident(deps: Deps, body: dict[str, Any], what: str, *, number: int | None = None) -> Incident:
    """The incident a button names, re-read and checked with `can_see`: the number is a hint.

    Which message the button sits on is not what decides: the summary is clicked before its ts is
    recorded (the setup writes it last), a summary posted again or a second one a race left behind
    carry the same buttons, and none of that makes the incident one the clicker cannot see. Only a
    button in another incident's channel is refused (and audited): it would act on an incident other
    than the one the message is about, so the clicker is told exactly that, and how to act instead.
    """
    user = body["user"]["id"]
    number = incident_number(body) if number is None else number
    incident = await access.find(deps, number=number, person=user)
    channel, _, ephemeral = clicked_message(body)
    if not channel or ephemeral or channel == incident.channel_id:
        return incident
    async with deps.db.session() as session:
        other = await service.by_channel(session, channel_id=channel)
    if other is None or other.id == incident.id:
        return incident
    await refused(
        deps,
        actor=user,
        what=what,
        claimed=number,
        reason=f"the button is on a message in {other.ref}'s channel",
        incident_id=incident.id,
    )
    raise InvalidState(
        f"This button names {incident.ref}, but it is on a message in another incident's channel, so nothing "
        f"was done. To act on {incident.ref}, use its channel or name it: `/incident {incident.ref} …`."
    )


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
        blocks.ActionId.UPDATE: ("open the update form", "Update status", blocks.update_modal),
        blocks.ActionId.RESOLVE: ("open the resolve form", "Resolve", blocks.resolve_modal),
    }

    async def open_form(ack: AsyncAck, body: dict[str, Any], client: AsyncWebClient, respond: AsyncRespond) -> None:
        """Update status / Resolve: a form for an open incident. The trigger expires 3 s after the click and
        the access check may wait on Slack, so an empty form opens first and is filled after the check."""
        await ack()
        step, title, build = forms[body["actions"][0]["action_id"]]

        async def form() -> dict[str, Any]:
            incident = await clicked_incident(deps, body, "open a form")
            if not incident.is_open:
                raise InvalidState(f"{incident.ref} is resolved already.")
            return build(incident)

        await guarded(
            respond, lambda: open_then_fill(client, trigger_id=body["trigger_id"], step=step, title=title, build=form)
        )

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
