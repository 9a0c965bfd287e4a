"""The status page's `PublicChat` port with the Slack Web API: what was published, reminders, sync trouble.

A reminder to publish carries message metadata naming its incident and row, so a retry after an answer that
never came back finds it in the channel's history instead of posting it twice.
Also the *Publish update* form, prefilled from the last public update (never from internal notes).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import format_duration
from bot.incidents.models import Incident
from bot.slack import blocks
from bot.slack.api import CHANNEL_GONE, call, marked_in
from bot.slack.text import clip, escape, user
from bot.statuspage.models import Impact, PublicUpdate, SyncAction
from bot.statuspage.ports import PublicChat

Block = dict[str, Any]
# The metadata event of a reminder to publish. Metadata is readable by the whole workspace: it names ids only.
REMINDER_EVENT = "status_page_reminder"
PUBLISH_FORM = "status_page_publish"  # callback id of the form; handled in listeners/views/statuspage.py
IMPACT_LABELS = {
    "none": "None (a notice)",
    "minor": "Minor (degraded performance)",
    "major": "Major (partial outage)",
    "critical": "Critical (major outage)",
}


def publish_button(incident: Incident) -> Block:
    return {
        "type": "actions",
        "block_id": "status_page_actions",
        "elements": [blocks.button("Publish update", blocks.ActionId.PUBLISH, str(incident.id), "primary")],
    }


def reminder_marker(incident: Incident, reminder_id: int) -> dict[str, Any]:
    return {"event_type": REMINDER_EVENT, "event_payload": {"incident": incident.id, "reminder": reminder_id}}


def published_text(incident: Incident, update: PublicUpdate) -> str:
    where = f" · {escape(', '.join(update.components))}" if update.components else ""
    return (
        f"📣 {user(update.published_by)} published to the status page: *{update.status}* · {update.impact} impact"
        f"{where}\n*{escape(update.title)}*\n>{escape(update.message)}"
    )


def corrected_what(update: PublicUpdate, repeated: PublicUpdate | None) -> str:
    """Which updates a correction changed: the last one, and after a resolve the one its text repeated."""
    if repeated is None:
        return f"*{update.status}*, still dated when it was published"
    return (
        f"*{update.status}*, and the *{repeated.status}* update whose text it repeated; "
        "both still dated when they were published"
    )


def given_up_text(incident: Incident, error: str, action: SyncAction, update: PublicUpdate) -> str:
    """What the bot stopped sending to Statuspage after refusals, and what to do there by hand instead."""
    stopped = "The bot has stopped trying"
    if action == SyncAction.WITHDRAW:
        return (
            f"⚠️ Atlassian Statuspage refused to delete {incident.ref}, withdrawn from the status page: "
            f"{escape(error)}. {stopped}, so it is still on Statuspage: please delete it there "
            "by hand, in Statuspage's own management pages. Our own status page no longer shows it."
        )
    if action == SyncAction.EDIT:
        what, todo = f"the correction of the *{update.status}* update", "correct that update there by hand to read"
    else:
        what, todo = f"the *{update.status}* update", "post it there by hand"
    return (
        f"⚠️ Atlassian Statuspage refused {what} of {incident.ref}: {escape(error)}. {stopped}, so it is not on "
        f"Statuspage (our own status page shows it): please {todo}, in Statuspage's own management pages:\n"
        f">{escape(update.message)}\nLater updates of {incident.ref} go on to Statuspage as usual."
    )


class SlackPublicChat:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def _post(
        self, incident: Incident, step: str, text: str, extra: list[Block] | None = None, **more: Any
    ) -> None:
        if not incident.channel_id:
            return
        body = [blocks.mrkdwn(text), *extra] if extra else None
        message = self.client.chat_postMessage(channel=incident.channel_id, text=clip(text, 3000), blocks=body, **more)
        await call(step, message)

    async def post_published(self, *, incident: Incident, update: PublicUpdate) -> None:
        await self._post(incident, "tell the channel about a publish", published_text(incident, update))

    async def post_corrected(
        self, *, incident: Incident, update: PublicUpdate, previous: str, repeated: PublicUpdate | None
    ) -> None:
        text = (
            f"✏️ {user(update.edited_by or update.published_by)} corrected the last status page update "
            f"({corrected_what(update, repeated)}):\n>{escape(update.message)}\n"
            f"It read:\n>{escape(previous)}"
        )
        await self._post(incident, "tell the channel about a correction", text)

    async def post_withdrawn(self, *, incident: Incident, actor: str) -> None:
        text = (
            f"🗑️ {user(actor)} withdrew {incident.ref} from the status page: "
            "it is no longer on the page, in summary.json or in the feed (nor on Atlassian Statuspage, "
            "when it is set up). "
            "`/incident publish` makes it public again, as a new public incident."
        )
        await self._post(incident, "tell the channel about a withdrawal", text)

    async def post_reminder(
        self, *, incident: Incident, since: timedelta, mention: list[str], reminder_id: int
    ) -> bool:
        who = " ".join(user(u) for u in mention)
        text = (
            f"📣 {who + ': ' if who else ''}the public has heard nothing about {incident.ref} for "
            f"{format_duration(since)}. Publish an update for the status page (internal notes are not published)."
        )
        marker = reminder_marker(incident, reminder_id)
        await self._post(incident, "remind the channel to publish", text, [publish_button(incident)], metadata=marker)
        return bool(incident.channel_id)

    async def reminder_posted(self, *, incident: Incident, reminder_id: int, since: datetime) -> bool:
        if not incident.channel_id:
            return False
        return await marked_in(
            self.client,
            channel=incident.channel_id,
            since=since,
            metadata=reminder_marker(incident, reminder_id),
            step="look for an earlier reminder to publish",
            expected=CHANNEL_GONE,
        )

    async def post_sync_problem(self, *, incident: Incident, error: str, retry_in: timedelta) -> None:
        text = (
            f"⚠️ Atlassian Statuspage did not take the latest public update of {incident.ref}: {escape(error)}. "
            f"It is kept and retried in {format_duration(retry_in)} (and on restart); nothing is lost."
        )
        await self._post(incident, "tell the channel Statuspage failed", text)

    async def post_sync_given_up(
        self, *, incident: Incident, error: str, action: SyncAction, update: PublicUpdate
    ) -> None:
        await self._post(
            incident, "tell the channel Statuspage kept refusing", given_up_text(incident, error, action, update)
        )

    async def post_sync_deleted_there(self, *, incident: Incident, update: PublicUpdate, skipped: int) -> None:
        later = f" (and the {skipped} queued behind it)" if skipped else ""
        text = (
            f"⚠️ {incident.ref} was deleted on Atlassian Statuspage (by hand, there), so its latest *{update.status}* "
            f"update{later} was not published there; our own status page still shows it:\n"
            f">{escape(update.message)}\nThe bot will not re-create it on its own: "
            "`/incident publish <message>` again creates a new incident on Statuspage."
        )
        await self._post(incident, "tell the channel the incident was deleted on Statuspage", text)

    async def post_sync_recovered(self, *, incident: Incident) -> None:
        await self._post(
            incident, "tell the channel Statuspage caught up", "✅ Atlassian Statuspage is up to date again."
        )


def _option(value: str, label: str) -> dict[str, Any]:
    return {"text": {"type": "plain_text", "text": clip(label, 75)}, "value": value}


def _input(block_id: str, label: str, element: dict[str, Any], **extra: Any) -> Block:
    return {
        "type": "input",
        "block_id": block_id,
        "label": {"type": "plain_text", "text": label},
        "element": {"action_id": "value", **element},
        **extra,
    }


def _components_input(components: list[str], chosen: list[str]) -> Block:
    options = [_option(c, c) for c in components[:100]]
    element: dict[str, Any] = {"type": "multi_static_select", "options": options}
    initial = [o for o in options if o["value"] in chosen]
    if initial:
        element["initial_options"] = initial
    return _input("components", "Affected components", element, optional=True)


def publish_modal(
    incident: Incident, *, components: list[str], impact: str, chosen: list[str], title: str, message: str
) -> dict[str, Any]:
    """Impact, affected components, public title and message; prefilled with the last public update."""
    impacts = [_option(i.value, IMPACT_LABELS[i.value]) for i in Impact]
    current = next(o for o in impacts if o["value"] == impact)
    form: list[Block] = [
        _input("impact", "Impact", {"type": "static_select", "options": impacts, "initial_option": current})
    ]
    if components:
        form.append(_components_input(components, chosen))
    form.append(
        _input(
            "title", "Public title", {"type": "plain_text_input", "max_length": 200, "initial_value": clip(title, 200)}
        )
    )
    text: dict[str, Any] = {"type": "plain_text_input", "multiline": True, "max_length": 3000}
    if message:
        text["initial_value"] = message
    hint = (
        f"Published with the current status ({incident.status}). "
        "Anyone can read it: no internal names, hosts or customers."
    )
    form.append(_input("message", "Public message", text, hint={"type": "plain_text", "text": hint}))
    return {
        "type": "modal",
        "callback_id": PUBLISH_FORM,
        "private_metadata": str(incident.id),
        "title": {"type": "plain_text", "text": clip(f"Publish {incident.ref}", 24)},
        "submit": {"type": "plain_text", "text": "Publish"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": form,
    }


if TYPE_CHECKING:

    def _conforms(client: AsyncWebClient) -> PublicChat:
        return SlackPublicChat(client)
