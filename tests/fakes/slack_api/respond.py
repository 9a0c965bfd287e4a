"""response_url: what Bolt's respond() posts, acted on as Slack does when the URL has a channel context."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.blocks import validate_blocks
from tests.fakes.slack_api.state import Message


class Responses(SlackBase):
    """response_urls handed to the bot, and what a POST to one does."""

    response_url_max_uses: int = 5  # Slack: a response_url takes at most 5 posts

    def response_url(
        self,
        key: str = "r",
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A response_url on this server; POSTs to it land in ``.responses``.

        With ``channel_id`` (and ``user_id``/``message_ts``) the POST also acts like Slack's:
        ``in_channel`` posts a message, the default posts an ephemeral one to ``user_id``,
        ``replace_original``/``delete_original`` change the message at ``message_ts``.
        """
        self._response_contexts[key] = {"channel": channel_id, "user": user_id, "message_ts": message_ts}
        return f"{self.url.removesuffix('/api/')}/respond/{key}"

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        """Store what Bolt's respond() sent; act on it when the URL was made with a channel context."""
        key = request.match_info["key"]
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        uses = self._response_uses.get(key, 0) + 1
        self._response_uses[key] = uses
        if uses > self.response_url_max_uses:
            return web.Response(status=404, text="used_url")  # Slack: at most 5 uses
        if "blocks" in body and validate_blocks(body["blocks"]):
            return web.Response(status=400, text="invalid_blocks")
        if not (body.get("text") or body.get("blocks") or body.get("attachments") or body.get("delete_original")):
            return web.Response(status=400, text="no_text")
        self.responses.append({"key": key, **body})
        self._apply_response(key, body)
        return web.Response(text="ok")

    def _apply_response(self, key: str, body: dict[str, Any]) -> None:
        ctx = self._response_contexts.get(key) or {}
        channel = self.channels.get(ctx.get("channel") or "")
        if channel is None:
            return
        message_ts = ctx.get("message_ts")
        original = channel.find(message_ts) if message_ts else None
        if body.get("delete_original") and original is not None:
            channel.messages.remove(original)
            return
        if body.get("replace_original") and original is not None:
            original.text = str(body.get("text") or "")
            original.blocks = body.get("blocks")
            original.attachments = body.get("attachments")
            original.edited = True
            return
        ephemeral = body.get("response_type") != "in_channel"
        channel.messages.append(
            Message(
                ts=self._next_ts(),
                channel=channel.id,
                user=self.bot_user_id,
                text=str(body.get("text") or ""),
                blocks=body.get("blocks"),
                thread_ts=body.get("thread_ts"),
                attachments=body.get("attachments"),
                ephemeral_to=ctx.get("user") if ephemeral else None,
            )
        )
