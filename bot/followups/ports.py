"""What the follow-up flows need from an issue tracker (GitHub, Jira, Linear in `trackers.py`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from bot.exceptions import BotError


class TrackerError(BotError):
    """The tracker refused or failed; the message says what to fix (shown to the person who clicked)."""


class TrackerRateLimited(TrackerError):
    """Still rate-limited after waiting as long as we are willing to: try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class NewIssue:
    title: str
    body: str  # plain text; each tracker formats it its own way (Markdown, Atlassian Document Format)


@dataclass(frozen=True)
class Issue:
    key: str  # what the tracker reads it back by: GitHub's number, Jira's key, Linear's id
    url: str  # where a person opens it
    name: str  # what people call it: #42, OPS-7, ENG-12


class IssueTracker(Protocol):
    kind: str

    async def create(self, issue: NewIssue) -> Issue: ...

    async def is_closed(self, *, key: str) -> bool:
        """Done in the tracker (closed, resolved, completed or cancelled)."""
        ...
