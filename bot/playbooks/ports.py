"""What the playbook flows need from outside: the chat (Slack) and the other domains' actions.

The chat port is implemented in `bot/slack/adapters/playbooks.py` (`deps.playbook_chat`). The actions
of a step use the other domains through their typed attributes on `Deps`; each is optional, and a
missing one is answered with "not available":

- `status`   `bot.health.checker.check_all` (the health domain's checker, on the shared httpx client)
- `restart`, `rollback`  returned as an `OpsOffer` (`bot.playbooks.flows`): the listener shows the same
  confirmation `/restart` and `/rollback` show (same permissions, same Confirm button) through
  `bot.ops.confirmations.prepare`, and records what it showed; needs `deps.ops`
- `page`     `deps.escalator.escalate_now(incident_id, actor=...)`
- `notify`   the chat port's `notify`
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from bot.incidents.models import Incident
    from bot.playbooks.checklist import Progress
    from bot.playbooks.schema import Playbook


class PlaybookChat(Protocol):
    async def post_progress(self, *, channel_id: str, progress: Progress) -> str:
        """Post the progress message; returns its ts."""
        ...

    async def update_progress(self, *, channel_id: str, ts: str, progress: Progress) -> str:
        """Edit the progress message in place (never re-post); returns its text as the channel now has it."""
        ...

    async def post_picker(self, *, incident: Incident, playbooks: list[Playbook], note: str) -> str:
        """Ask the channel which playbook to follow; returns the message ts (it becomes the progress message)."""
        ...

    async def notify(self, *, channel: str, text: str) -> str:
        """Post a playbook's notification to a channel (ID or #name); returns the channel it went to."""
        ...
