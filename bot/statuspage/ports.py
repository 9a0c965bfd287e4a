"""What the status page's flows need from a chat platform; Slack implements it in
`bot/slack/adapters/statuspage.py`. Every method raises `bot.exceptions.ChatError` on failure."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Protocol

from bot.incidents.models import Incident
from bot.statuspage.models import PublicUpdate, SyncAction


class PublicChat(Protocol):
    async def post_published(self, *, incident: Incident, update: PublicUpdate) -> None:
        """Tell the incident channel what was published, and by whom."""
        ...

    async def post_corrected(
        self, *, incident: Incident, update: PublicUpdate, previous: str, repeated: PublicUpdate | None
    ) -> None:
        """Tell the incident channel that the last public update's message was corrected, by whom (and, after a
        resolve, the `repeated` update whose text the "resolved" one repeated)."""
        ...

    async def post_withdrawn(self, *, incident: Incident, actor: str) -> None:
        """Tell the incident channel that the public incident was withdrawn from the status page, by whom."""
        ...

    async def post_reminder(
        self, *, incident: Incident, since: timedelta, mention: list[str], reminder_id: int
    ) -> bool:
        """Remind the channel that the public has heard nothing for `since`, with a Publish button; the post
        names the incident and the reminder row (`reminder_id`), so `reminder_posted` can find it.

        False when nothing was posted: the incident has no channel (its setup failed)."""
        ...

    async def reminder_posted(self, *, incident: Incident, reminder_id: int, since: datetime) -> bool:
        """Whether reminder `reminder_id` was posted in the channel since `since`: an earlier attempt whose answer
        was lost. False when the incident has no channel; ChatError when it cannot look."""
        ...

    async def post_sync_problem(self, *, incident: Incident, error: str, retry_in: timedelta) -> None:
        """Statuspage refused or could not be reached: say so, and that it is retried."""
        ...

    async def post_sync_given_up(
        self, *, incident: Incident, error: str, action: SyncAction, update: PublicUpdate
    ) -> None:
        """Statuspage kept refusing `action` (an update's send, its correction, or deleting the withdrawn
        incident) and the bot stopped trying: say what is not on Statuspage, for a person to do there by hand."""
        ...

    async def post_sync_deleted_there(self, *, incident: Incident, update: PublicUpdate, skipped: int) -> None:
        """The incident was deleted on Statuspage by hand: `update` (and `skipped` queued behind it) is not
        published there, and the bot will not re-create it until someone publishes again."""
        ...

    async def post_sync_recovered(self, *, incident: Incident) -> None:
        """The updates that were waiting are on Statuspage now."""
        ...
