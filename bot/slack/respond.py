"""`respond(...)` on the Slack client's kept-alive HTTP session.

Bolt's `AsyncRespond` builds a webhook client without a session, so slack_sdk opens a new aiohttp
session, a new connection and a TLS handshake to hooks.slack.com, for every reply. `SharedRespond`
is the same callable (Bolt's public class, its call signature kept) whose webhook client is given
the session the Web API client keeps open (`bot.slack.app.keep_alive`): slack_sdk's documented
`session` argument, which it then neither replaces nor closes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aiohttp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.webhook import WebhookResponse
from slack_sdk.webhook.async_client import AsyncWebhookClient


class SharedRespond(AsyncRespond):
    def __init__(self, *, response_url: str, session: aiohttp.ClientSession) -> None:
        super().__init__(response_url=response_url)
        self.session = session

    async def __call__(
        self,
        text: str | dict[str, Any] = "",
        blocks: Sequence[dict[str, Any] | Block] | None = None,
        attachments: Sequence[dict[str, Any] | Attachment] | None = None,
        response_type: str | None = None,
        replace_original: bool | None = None,
        delete_original: bool | None = None,
        unfurl_links: bool | None = None,
        unfurl_media: bool | None = None,
        thread_ts: str | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> WebhookResponse:
        assert self.response_url is not None
        message = (
            dict(text)
            if isinstance(text, dict)
            else {
                "text": text,
                "blocks": blocks,
                "attachments": attachments,
                "response_type": response_type,
                "replace_original": replace_original,
                "delete_original": delete_original,
                "unfurl_links": unfurl_links,
                "unfurl_media": unfurl_media,
                "thread_ts": thread_ts,
                "metadata": metadata,
            }
        )
        # send_dict leaves out the None fields and turns Block objects into dicts, as Bolt's respond does.
        client = AsyncWebhookClient(url=self.response_url, session=self.session)
        return await client.send_dict(message)
