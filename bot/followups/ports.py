"""What the follow-up flows need from an issue tracker (GitHub, Jira, Linear in `trackers.py`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

from bot.exceptions import BotError


class TrackerError(BotError):
    """The tracker refused or failed; the message says what to fix (shown to the person who clicked)."""


class TrackerRateLimited(TrackerError):
    """Still rate-limited after waiting as long as we are willing to: try again after `retry_after` seconds."""

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class IssueState(StrEnum):
    """What the tracker says of an issue. GONE is an answer, not a failure: the issue was deleted, or moved
    where the bot cannot read it, while the tracker itself answers (a refused token or a failing tracker
    is a TrackerError, asked again next time)."""

    OPEN = "open"
    CLOSED = "closed"  # closed, resolved, completed or cancelled
    GONE = "gone"
    # In the tracker's trash (Linear's delete), still restorable: the link stays for a grace
    # (`service.TRASH_GRACE`) and goes only if the issue is still there after it.
    TRASHED = "trashed"


@dataclass(frozen=True)
class NewIssue:
    title: str
    body: str  # plain text; each tracker formats it its own way (Markdown, Atlassian Document Format)
    # A UUID stored before the create and sent with it (a marker in the body, Linear's issue id), so
    # `find` can tell whether an attempt whose answer was lost created the issue after all.
    token: str = ""


@dataclass(frozen=True)
class Issue:
    key: str  # what the tracker reads it back by: GitHub's number, Jira's key, Linear's id
    url: str  # where a person opens it
    name: str  # what people call it: #42, OPS-7, ENG-12


_NAMED = re.compile(r"/(?:browse|issue)/([A-Za-z][A-Za-z0-9_]*-\d+)(?:[/?#]|$)")


def issue_name(*, url: str | None, key: str | None) -> str:
    """What people call a stored issue (only its link and key are kept): GitHub's #42 from its number,
    Jira's OPS-7 and Linear's ENG-12 from the link (Linear's key is an opaque id); else ""."""
    if key and key.isdigit():
        return f"#{key}"
    found = _NAMED.search(url or "")
    return found.group(1) if found else ""


class IssueTracker(Protocol):
    kind: str

    async def create(self, issue: NewIssue) -> Issue:
        """Create it; an attempt whose outcome is unknown (timeout, 5xx) is followed by `find` before another."""
        ...

    async def find(self, *, token: str) -> Issue | None:
        """The issue an earlier `create` with this token made, if the tracker has it."""
        ...

    async def state(self, *, key: str) -> IssueState:
        """Open, closed (done in the tracker), in its trash (restorable) or gone from it."""
        ...
