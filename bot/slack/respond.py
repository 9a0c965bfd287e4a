"""`respond(...)` through the bot's one HTTP client.

Bolt's `AsyncRespond` opens a new aiohttp session, so a new connection and a TLS handshake to
hooks.slack.com, for every reply. `SharedRespond` is the same callable (Bolt's public class, its
call signature kept) that posts the message to `response_url` with the shared `httpx.AsyncClient`
and its kept-alive connections. On loopback without TLS (benchmarks/ack_latency.py) the CPU per
command is the same within noise; the handshakes saved are Slack's, in production.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.models.attachments import Attachment
from slack_sdk.models.blocks import Block
from slack_sdk.webhook import WebhookResponse


class SharedRespond(AsyncRespond):
    def __init__(self, *, response_url: str, http: httpx.AsyncClient) -> None:
        super().__init__(response_url=response_url)
        self.http = http

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
        if isinstance(text, dict):
            message = message_of(**text)
        else:
            message = message_of(
                text=text,
                blocks=blocks,
                attachments=attachments,
                response_type=response_type,
                replace_original=replace_original,
                delete_original=delete_original,
                unfurl_links=unfurl_links,
                unfurl_media=unfurl_media,
                thread_ts=thread_ts,
                metadata=metadata,
            )
        assert self.response_url is not None
        # Like Bolt's: an HTTP error status comes back in the response; only a failed connection raises.
        answer = await self.http.post(self.response_url, json=message, timeout=10)
        return WebhookResponse(
            url=self.response_url, status_code=answer.status_code, body=answer.text, headers=dict(answer.headers)
        )


def message_of(**fields: Any) -> dict[str, Any]:
    """The JSON body of a response_url message: the fields given, blocks and attachments as dicts."""
    message = {key: value for key, value in fields.items() if value is not None}
    for key in ("blocks", "attachments"):
        if key in message:
            message[key] = [item.to_dict() if isinstance(item, Block | Attachment) else item for item in message[key]]
    return message
