"""Clicks that are not what they claim: refused, logged, and kept in the audit log.

A button's value comes back from the person's Slack client, which they control; a value naming
another incident, service or page than the one the server stored is a forgery (or a very old
message). It is refused with the answer for something that does not exist, and recorded so the
security team can see who tried what.
"""

from __future__ import annotations

import logging
from typing import Any

from bot.deps import Deps
from bot.ops import service as audit
from bot.ops.models import Outcome

log = logging.getLogger(__name__)


async def refused(
    deps: Deps, *, actor: str, what: str, claimed: Any, reason: str, incident_id: int | None = None
) -> None:
    """Audit a refused click (`what`: "confirm", "acknowledge", "step", ...); `incident_id` only when it exists."""
    log.warning("refused a %s click by %s: %s (value %r)", what, actor, reason, str(claimed)[:200])
    async with deps.db.session() as session:
        await audit.record(
            session,
            at=deps.clock.now(),
            actor=actor,
            action=f"click:{what}"[:20],
            service="",
            outcome=Outcome.REFUSED,
            detail=f"{reason}; the click carried {str(claimed)[:500]!r}",
            incident_id=incident_id,
            timeline_text=f"a {what} click by {actor} was refused: {reason}" if incident_id is not None else None,
        )
