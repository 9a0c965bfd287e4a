"""Archiving an incident channel in Slack: the last message, then `conversations.archive`."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.archive.ports import Goodbye, NotArchived
from bot.clock import format_duration, utc
from bot.config import is_user_id
from bot.exceptions import ChatError
from bot.slack.api import CHANNEL_GONE, call, data, find_marked
from bot.slack.text import escape

GOODBYE_EVENT = "incident_channel_goodbye"
_OUT = frozenset({"not_in_channel"})  # the bot was removed from the channel


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


def not_archived_text(notice: NotArchived) -> str:
    name = f" (#{notice.channel_name})" if notice.channel_name else ""
    return (
        f":warning: The channel of {notice.ref}{name} was not archived, though its last message said it was "
        f"being archived: {notice.reason}.{' ' + notice.by_hand if notice.by_hand else ''}"
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
                history = self.client.conversations_history
                return data(await self._as_member("look for an earlier last message", channel_id, history, **kwargs))

            if await find_marked(page, channel=channel_id, oldest=utc(maybe_posted_since), metadata=_marker(goodbye)):
                return
        await call(
            "post the last message",
            self.client.chat_postMessage(
                channel=channel_id, text=goodbye_text(goodbye), unfurl_links=False, metadata=_marker(goodbye)
            ),
        )

    async def say_not_archived(self, *, notice: NotArchived) -> None:
        text = not_archived_text(notice)
        try:
            post = self.client.chat_postMessage(channel=notice.channel_id, text=text)
            await call("say the channel was not archived", post, expected=CHANNEL_GONE)
            return
        except ChatError as exc:
            people = [user for user in notice.tell if is_user_id(user)]
            if exc.code not in CHANNEL_GONE or not people:
                raise
        text += "\n_(Sent to you because the bot cannot post in the channel: it is not in it any more.)_"
        for user in people:
            opened = await call("open a DM", self.client.conversations_open(users=user))
            dm = str((data(opened).get("channel") or {}).get("id") or "")
            await call("DM that the channel was not archived", self.client.chat_postMessage(channel=dm, text=text))

    async def archive(self, *, channel_id: str) -> None:
        await self._as_member("archive the channel", channel_id, self.client.conversations_archive, channel=channel_id)

    async def _as_member(
        self, step: str, channel_id: str, method: Callable[..., Awaitable[AsyncSlackResponse]], **kwargs: Any
    ) -> AsyncSlackResponse:
        """Someone removed the bot from the (public) channel after the incident: it joins again
        (channels:join) rather than leave the channel unarchived for good."""
        try:
            return await call(step, method(**kwargs), expected=_OUT)
        except ChatError as exc:
            if exc.code not in _OUT:
                raise
        await call("join the channel to archive it", self.client.conversations_join(channel=channel_id))
        return await call(step, method(**kwargs))
