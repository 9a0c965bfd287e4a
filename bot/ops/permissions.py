"""Who may restart or roll back: checked on the request and again on the click, refusals audited."""

from __future__ import annotations

from bot.deps import Deps
from bot.exceptions import PermissionDenied
from bot.ops import service as audit
from bot.ops.models import Action, Outcome
from bot.ops.outcomes import record_outcome
from bot.ops.plans import PlanRef
from bot.ops.runtime import directory


async def decide(deps: Deps, *, action: Action, user_id: str) -> audit.Decision:
    return await audit.check_permission(
        action=action, user_id=user_id, permissions=deps.settings.config.permissions, directory=directory(deps)
    )


async def require_permission(
    deps: Deps, ref: PlanRef, *, user_id: str, channel_id: str | None, platform: str | None
) -> None:
    """PermissionDenied, audited (without claiming the confirmation), unless `user_id` may do `ref.action`."""
    decision = await decide(deps, action=ref.action, user_id=user_id)
    if decision:
        return
    await record_outcome(
        deps,
        ref,
        actor=user_id,
        channel_id=channel_id,
        platform=platform,
        outcome=Outcome.REFUSED,
        detail=decision.plain,
        timeline_text=f"{ref.action.verb} of {ref.service} refused: {decision.plain}",
    )
    raise PermissionDenied(f"you may not {ref.action.value} {ref.service}: {decision.reason}", people=decision.people)
