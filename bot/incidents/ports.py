"""What the incident flows need from a chat platform. Slack implements it in `bot/slack/adapters`.

Methods are semantic ("post the summary"), not Slack calls, so rendering (Block Kit, escaping)
stays in the Slack layer and the flows are tested with an in-memory fake.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from bot.incidents.models import Incident


@dataclass(frozen=True)
class Channel:
    id: str
    name: str


@dataclass(frozen=True)
class Notice:
    """A line posted in the incident channel: `kind` picks the wording, `text` is what the user typed."""

    kind: str
    actor: str | None = None
    text: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


class IncidentChat(Protocol):
    async def create_channel(self, *, name: str, private: bool) -> Channel:
        """Raises ChannelNameTaken when the name exists, ChatError otherwise."""
        ...

    async def find_own_channel(self, *, name: str, created_after: datetime) -> Channel | None:
        """The live channel called `name` if this bot made it at or after `created_after`, else None.

        The adapter allows for the platform's clock skew and timestamp rounding around `created_after`.

        Why: when the database fails between Slack creating an incident's channel and the bot saving
        its ID, the retry gets `name_taken` for that same name; Slack's error carries no channel ID,
        so the flow asks here whether the taken name is its own channel to adopt instead of orphaning
        it under a `-2` twin. A channel someone else made, an archived one or an older one is never
        returned. Raises ChatError when the lookup itself fails.
        """
        ...

    async def find_own_post(self, *, channel_id: str, kind: str, incident: Incident) -> str | None:
        """The ts of the incident's `kind` post ("summary" or "announcement") this bot made in the
        channel since the declaration, else None; raises ChatError when the lookup fails.

        Why: a run killed between Slack posting it and the bot saving its ts would otherwise post a
        second one when the setup is resumed. The posts carry message metadata naming the incident.
        """
        ...

    async def tell_setup_resumed(self, *, incident: Incident, problems: list[str]) -> None:
        """Tell the declarer (a DM) that the setup a restart interrupted has been finished, or what failed."""
        ...

    async def tell_channel_archived(self, *, to: str, incident: Incident, archived_by: str | None) -> None:
        """Tell `to` (a person, by DM; or a channel, for a public incident nobody is in charge of) that the open
        incident's channel was archived (by `archived_by`), and that a person must unarchive it: the bot
        cannot. Raises ChatError when Slack refuses it."""
        ...

    async def post_line(self, *, channel_id: str, text: str) -> None:
        """A plain line from the bot in a channel (`text` is mrkdwn the caller made safe)."""
        ...

    async def invite(self, *, channel_id: str, users: list[str]) -> None: ...

    async def set_topic(self, *, incident: Incident) -> None: ...

    async def post_summary(self, *, incident: Incident) -> str:
        """Post the summary with its buttons; returns the message ts."""
        ...

    async def pin(self, *, channel_id: str, message_ts: str) -> None:
        """Pin a message; pinning it again is not an error."""
        ...

    async def refresh_summary(self, *, incident: Incident) -> str:
        """Edit the summary in place; returns its text as the channel now has it. MessageGone when deleted."""
        ...

    async def delete_post(self, *, channel_id: str, ts: str) -> None:
        """Delete one of the bot's own messages."""
        ...

    async def announce(self, *, incident: Incident, channel: str) -> str: ...

    async def refresh_announcement(self, *, incident: Incident) -> None: ...

    async def post_notice(self, *, incident: Incident, notice: Notice) -> str | None: ...

    async def permalink(self, *, channel_id: str, message_ts: str, thread_ts: str | None = None) -> str | None: ...
