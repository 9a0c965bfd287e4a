"""What publishing a post-mortem needs from the chat platform. Slack implements it in
`bot/slack/adapters/postmortem.py`; tests of the flow use the real adapter against the fake Slack."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Protocol

from bot.postmortem.data import PostmortemData


class PostmortemChat(Protocol):
    async def user_names(self, *, user_ids: Iterable[str]) -> dict[str, str]:
        """Display names for the document; best effort (a lookup that fails is left out, never raised)."""
        ...

    async def upload(self, *, data: PostmortemData, filename: str, content: bytes, trigger: str) -> str:
        """Share the document in the incident channel with a short summary; returns the file id.
        `trigger` is "resolve" or "command". Raises ChatError when Slack refuses."""
        ...

    async def report_failure(self, *, channel_id: str, ref: str, error: str) -> None:
        """Tell the channel the draft could not be shared and how to get it anyway."""
        ...
