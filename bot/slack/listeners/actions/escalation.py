"""The Acknowledge button on a page DM.

It acknowledges the incident through the incident flow (so the channel, the summary and the
`IncidentAcknowledged` signal behave exactly as for `/incident ack`; escalation records the ack on
its pages from that signal), then replaces the DM so the button cannot be pressed twice.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import Deps
from bot.exceptions import InvalidState, UsageError
from bot.incidents import flows, service
from bot.slack import blocks
from bot.slack.adapters.escalation import PAGE_ACK, acknowledged_blocks
from bot.slack.listeners.common import guarded


def parse_page_value(value: str) -> tuple[int, int]:
    """`<incident>:<page>` as written by the page DM."""
    incident, _, page = value.partition(":")
    if not (incident.isdigit() and page.isdigit()):
        raise UsageError("This button is from an old or damaged page.", usage="/incident ack")
    return int(incident), int(page)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(PAGE_ACK)
    async def acknowledge_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            value = str((body.get("actions") or [{}])[0].get("value", ""))
            incident_id, _page_id = parse_page_value(value)
            user = body["user"]["id"]
            try:
                outcome = await flows.acknowledge(deps, incident_id=incident_id, actor=user)
            except InvalidState:
                async with deps.db.session() as session:
                    incident = await service.get(session, number=incident_id)
                if incident.is_open:
                    raise
                text = f"✅ {incident.ref} is resolved already; no need to acknowledge."
                await respond(
                    text=text,
                    blocks=[blocks.header(f"{incident.ref}: {incident.title}"), blocks.mrkdwn(text)],
                    replace_original=True,
                )
                return
            incident = outcome.incident
            note = ""
            if not outcome.changed:
                note = f"{incident.ref} had been acknowledged already by <@{incident.acknowledged_by}>."
            await respond(
                text=f"✋ You acknowledged {incident.ref}.",
                blocks=acknowledged_blocks(incident, user, note=note),
                replace_original=True,
            )

        await guarded(respond, work)
