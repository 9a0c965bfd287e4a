"""Archiving an incident channel in Slack: the last message, then `conversations.archive`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.archive.ports import Goodbye
from bot.clock import format_duration, utc
from bot.exceptions import ChatError
from bot.slack.api import call, data, find_marked
from bot.slack.text import escape

GOODBYE_EVENT = "incident_channel_goodbye"


def _marker(goodbye: Goodbye) -> dict[str, Any]:
    return {"event_type": GOODBYE_EVENT, "event_payload": {"incident": goodbye.ref}}


def goodbye_text(goodbye: Goodbye) -> str:
    where = (
        f"The post-mortem: <{goodbye.postmortem_url}|{goodbye.ref} post-mortem>."
        if goodbye.postmortem_url
        else f"No post-mortem was shared here; `/incident {goodbye.ref} postmortem` drafts one."
    )
    return (
        f"🗄️ {goodbye.ref} ({escape(goodbye.title)}) was resolved {format_duration(goodbye.resolved_for)} ago, "
        f"so this channel is being archived. {where} Its history stays searchable."
    )


class SlackArchiveChat:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def file_link(self, *, file_id: str) -> str | None:
        try:
            response = await call("find the post-mortem", self.client.files_info(file=file_id))
        except ChatError as exc:
            if exc.code in ("file_not_found", "file_deleted", "not_visible", "access_denied"):
                return None
            raise
        link = (data(response).get("file") or {}).get("permalink")
        return str(link) if link else None

    async def say_goodbye(self, *, channel_id: str, goodbye: Goodbye, maybe_posted_since: datetime | None) -> None:
        if maybe_posted_since is not None:

            async def page(kwargs: dict[str, Any]) -> dict[str, Any]:
                return data(await call("look for an earlier last message", self.client.conversations_history(**kwargs)))

            if await find_marked(page, channel=channel_id, oldest=utc(maybe_posted_since), metadata=_marker(goodbye)):
                return
        await call(
            "post the last message",
            self.client.chat_postMessage(
                channel=channel_id, text=goodbye_text(goodbye), unfurl_links=False, metadata=_marker(goodbye)
            ),
        )

    async def archive(self, *, channel_id: str) -> None:
        await call("archive the channel", self.client.conversations_archive(channel=channel_id))
