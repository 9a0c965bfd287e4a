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
from bot.escalation.models import Page
from bot.escalation.pages.targets import dmed
from bot.exceptions import InvalidState, UsageError
from bot.incidents import access, flows, service
from bot.incidents.models import Incident
from bot.ops.clicks import refused
from bot.slack import blocks
from bot.slack.adapters.escalation import PAGE_ACK, acknowledged_blocks, page_title
from bot.slack.listeners.common import guarded


def parse_page_value(value: str) -> tuple[int, int]:
    """`<incident>:<page>` as written by the page DM."""
    incident, _, page = value.partition(":")
    if not all(part.isascii() and part.isdigit() and len(part) < 10 for part in (incident, page)):
        raise UsageError("This button is from an old or damaged page.", usage="/incident ack")
    return int(incident), int(page)


async def _checked_page(deps: Deps, value: str, user: str) -> tuple[int, list[str]]:
    """(incident, whom it was for) of the page a click names, as stored.

    The page decides the incident, not the click: a value pairing a page with another incident is
    refused and audited. The person paged acknowledges for themselves, even before there is a
    channel to invite them to; once a private incident's channel exists, its members decide, so
    someone removed from it cannot act through an old DM. Anyone else must be able to see the
    incident, and their ack is recorded as made for the people paged.
    """
    incident_id, page_id = parse_page_value(value)
    async with deps.db.session() as session:
        page = await session.get(Page, page_id)
        incident = await session.get(Incident, incident_id)
        # Reached so far: a page waiting to retry someone (or for its turn to be recorded) has no `sent_to` yet.
        reached = list(dict.fromkeys([*page.sent_to, *await dmed(session, page_id=page_id)])) if page else []
    paged = user in reached
    if page is None or page.incident_id != incident_id:
        await refused(
            deps,
            actor=user,
            what="page ack",
            claimed=value,
            reason="the page is not one of that incident's",
            incident_id=page.incident_id if page is not None else None,
        )
        raise access.not_found(incident_id)
    if paged and not (incident is not None and incident.private and incident.channel_id):
        return incident_id, []
    await access.find(deps, number=incident_id, person=user)
    return incident_id, [] if paged else reached


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(PAGE_ACK)
    async def acknowledge_page(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            value = str((body.get("actions") or [{}])[0].get("value", ""))
            user = body["user"]["id"]
            incident_id, for_whom = await _checked_page(deps, value, user)
            try:
                outcome = await flows.acknowledge(deps, incident_id=incident_id, actor=user, for_whom=for_whom)
            except InvalidState:
                async with deps.db.session() as session:
                    incident = await service.get(session, number=incident_id)
                if incident.is_open:
                    raise
                text = f"✅ {incident.ref} is resolved already; no need to acknowledge."
                await respond(
                    text=text,
                    blocks=[blocks.header(f"{incident.ref}: {page_title(incident)}"), blocks.mrkdwn(text)],
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
