"""What escalation needs from a chat platform. Slack implements it in `bot/slack/adapters/escalation.py`.

Methods are semantic ("DM this page to that user"); rendering (Block Kit, the Acknowledge button,
escaping the title) belongs to the adapter, so flows are tested with an in-memory fake.
Every method raises `bot.exceptions.ChatError` (with Slack's code, e.g. `user_not_found`) on failure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from bot.incidents.models import Incident


@dataclass(frozen=True)
class PageMessage:
    """One page going out: which level, and whether it is late because the bot was down."""

    page_id: int
    level: int
    name: str
    repeat: int = 0
    late_by: timedelta | None = None  # set when the page went out late (marked late)
    # The earlier level this person was paged at for this incident: their DM is a short note that the
    # incident reached this level too, not a second page as if they were new to it.
    paged_at_level: int | None = None


# The recipient row (and `PageReport.retrying` key) that stands for PagerDuty taking a page.
PAGERDUTY = "pagerduty"


@dataclass(frozen=True)
class PageReport:
    """The channel mention after the DMs: who was paged and whose DM failed (user -> reason).

    On a retry (`attempt` > 1) it tells only what changed since the last mention: who was reached
    now, and who is given up on.
    """

    page: PageMessage
    paged: list[str]
    failed: dict[str, str] = field(default_factory=dict)
    unresolved: dict[str, str] = field(default_factory=dict)  # target as configured -> why nobody
    via: list[str] = field(default_factory=list)  # other paging services that took it ("PagerDuty")
    retrying: dict[str, str] = field(default_factory=dict)  # user or target -> why; tried again soon
    retry_in: timedelta | None = None  # when `retrying` is tried again
    attempt: int = 1
    # Of `paged`, who had only a note that it escalated (paged at an earlier level already) -> that level.
    noted: dict[str, int] = field(default_factory=dict)
    last_level: bool = False  # no level follows this one at the incident's severity


@dataclass(frozen=True)
class ReminderMessage:
    kind: str  # ReminderKind value: status_update | postmortem
    overdue_by: timedelta  # how long since the last status update / since resolution
    mention: list[str] = field(default_factory=list)  # the commander (or declarer) to ping
    reminder_id: int = 0  # the row: its post carries it, so a retry after a lost answer finds the post


class Pager(Protocol):
    async def dm_page(self, *, user: str, incident: Incident, page: PageMessage) -> None:
        """DM the page with an Acknowledge button; ChatError (code user_not_found, ...) on failure."""
        ...

    async def page_dm_posted(self, *, user: str, page: PageMessage, since: datetime) -> bool:
        """Whether the user's DM since `since` already holds this page: an earlier attempt whose answer
        was lost (the connection cut, a timeout) after Slack posted it. ChatError when it cannot look."""
        ...

    async def report_page(self, *, incident: Incident, report: PageReport) -> None:
        """Mention the paged users in the incident channel and say whose DM failed."""
        ...

    async def page_report_posted(self, *, incident: Incident, page: PageMessage, since: datetime) -> bool:
        """Whether the incident channel since `since` already holds a mention of this page: an earlier attempt
        whose answer was lost, or whose record failed after Slack posted it. ChatError when it cannot look."""
        ...

    async def invite(self, *, channel_id: str, users: list[str]) -> None:
        """Invite users to the incident channel; already-members are not an error.

        Raises InviteIncomplete (who was added, refused, left out) when not everyone got in."""
        ...

    async def group_members(self, *, group_id: str) -> list[str]:
        """The users of a user group (S…, or its @handle); ChatError no_such_subteam when there is none."""
        ...

    async def lookup_user(self, *, handle: str) -> str | None:
        """A user ID for `@handle`, or None when nobody has it."""
        ...

    async def post_reminder(self, *, incident: Incident, reminder: ReminderMessage) -> None:
        """Post a reminder in the incident channel, mentioning `reminder.mention`."""
        ...

    async def reminder_posted(self, *, incident: Incident, reminder: ReminderMessage, since: datetime) -> bool:
        """Whether this reminder was posted since `since` (where `post_reminder` posts it): an earlier attempt
        whose answer was lost. ChatError when it cannot look."""
        ...
