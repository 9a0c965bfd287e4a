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


@dataclass(frozen=True)
class NotArchived:
    """The channel was not archived and the bot gave up: why, and what a person can do instead."""

    ref: str
    channel_id: str
    channel_name: str | None
    reason: str
    by_hand: str  # "" when there is nothing to do
    tell: list[str]  # whom to DM when the bot cannot post in the channel (the commander, or who resolved it)


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

    async def say_not_archived(self, *, notice: NotArchived) -> None:
        """Say it in the channel; when the bot cannot post there (removed, a private channel it cannot
        see), DM `notice.tell` instead. Raises ChatError when nobody could be told."""
        ...
