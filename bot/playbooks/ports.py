"""What the playbook flows need from outside: the chat (Slack) and the other domains' actions.

The chat port is implemented in `bot/slack/adapters/playbooks.py` and attached as
`deps.services["playbook_chat"]`. The actions of a step are delegated to other domains through
`deps.services`; each is optional, and a missing one is answered with "not available":

- `status`   `bot.health.checker.check_all` (the health domain's checker, on the shared httpx client)
- `restart`, `rollback`  `deps.services["ops_offer"]`: an async callable that shows the same
  confirmation `/restart` and `/rollback` show (same permissions, same Confirm button), see `OpsOffer`;
  the playbook Slack listener provides one built on `bot.ops.confirmations.prepare` when ops is set up
- `page`     `deps.services["escalator"].escalate_now(incident_id, actor=...)`, see `Escalation`
- `notify`   the chat port's `notify`
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from bot.incidents.models import Incident
    from bot.playbooks.checklist import Progress
    from bot.playbooks.schema import Playbook


class PlaybookChat(Protocol):
    async def post_progress(self, *, channel_id: str, progress: Progress) -> str:
        """Post the progress message; returns its ts."""
        ...

    async def update_progress(self, *, channel_id: str, ts: str, progress: Progress) -> None:
        """Edit the progress message in place (never re-post)."""
        ...

    async def post_picker(self, *, incident: Incident, playbooks: list[Playbook], note: str) -> str:
        """Ask the channel which playbook to follow; returns the message ts (it becomes the progress message)."""
        ...

    async def notify(self, *, channel: str, text: str) -> str:
        """Post a playbook's notification to a channel (ID or #name); returns the channel it went to."""
        ...


class OpsOffer(Protocol):
    """Provided by the ops Slack layer as `deps.services["ops_offer"]`.

    Shows the person the same confirmation as `/restart <service>` or `/rollback <service>` (and
    refuses the same people); returns a short plain description of what was offered.
    `context` carries chat-layer details (for Slack: `respond`, `channel_id`).
    """

    async def __call__(
        self, *, action: str, service: str, user_id: str, incident_id: int | None, context: dict[str, Any]
    ) -> str | None: ...


class Escalation(Protocol):
    """What the `page` action needs from `deps.services["escalator"]`."""

    async def escalate_now(self, incident_id: int, *, actor: str) -> Any:
        """Page the next escalation level now; the result's str() (or a default) is recorded."""
        ...
