"""Archiving an incident channel in Slack: the last message, then `conversations.archive`."""

from __future__ import annotations

from slack_sdk.web.async_client import AsyncWebClient

from bot.archive.ports import Goodbye
from bot.clock import format_duration
from bot.exceptions import ChatError
from bot.slack.api import call, data
from bot.slack.text import escape


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

    async def say_goodbye(self, *, channel_id: str, goodbye: Goodbye) -> None:
        await call(
            "post the last message",
            self.client.chat_postMessage(channel=channel_id, text=goodbye_text(goodbye), unfurl_links=False),
        )

    async def archive(self, *, channel_id: str) -> None:
        await call("archive the channel", self.client.conversations_archive(channel=channel_id))
