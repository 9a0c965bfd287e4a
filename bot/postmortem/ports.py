"""What publishing a post-mortem needs from the chat platform. Slack implements it in
`bot/slack/adapters/postmortem.py`; tests of the flow use the real adapter against the fake Slack."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
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

    async def find_shared(self, *, channel_id: str, filename: str, since: datetime) -> str | None:
        """The id of the file named `filename` this bot shared in the channel since `since`, else None;
        raises ChatError when the lookup fails.

        Why: a run that failed or died between Slack sharing the draft and the bot recording it would
        otherwise share a second one when the resolve's work is tried again.
        """
        ...

    async def report_failure(
        self, *, channel_id: str, ref: str, error: str, code: str = "", dashboard: str | None = None
    ) -> None:
        """Tell the channel the draft could not be shared and how to get it anyway (what to mend
        first, when Slack's error `code` says retrying will not do). `dashboard` is where the web
        dashboard serves the draft, when it is on: the way to it when Slack will never take the file."""
        ...
