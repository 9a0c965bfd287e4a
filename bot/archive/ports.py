"""What archiving needs from the chat platform (Slack: bot/slack/adapters/archive.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol


@dataclass(frozen=True)
class Goodbye:
    """The channel's last message: what incident it was, and where its post-mortem is."""

    ref: str
    title: str
    resolved_for: timedelta
    postmortem_url: str | None  # the shared draft's permalink; None when none was shared


class ArchiveChat(Protocol):
    async def file_link(self, *, file_id: str) -> str | None:
        """The file's permalink, or None when it is gone."""
        ...

    async def say_goodbye(self, *, channel_id: str, goodbye: Goodbye, maybe_posted_since: datetime | None) -> None:
        """`maybe_posted_since`: an earlier attempt may have posted it and died before recording it, so
        look for it in the channel first (set only on a retry: a first attempt costs no history read)."""
        ...

    async def archive(self, *, channel_id: str) -> None:
        """Raises ChatError (code `already_archived`, `channel_not_found`, ...) when Slack refuses."""
        ...
