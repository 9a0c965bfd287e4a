"""The one small interface every deploy platform implements, and how a rollback target is chosen.

A platform client is bound to one service (its Railway IDs, Vercel project, Kubernetes
Deployment or webhook URL) and speaks in `Deployment`s: plain data with a status from a small
common vocabulary, so the flows and Slack never learn a vendor's words. Every failure leaves a
client as a `PlatformError` subclass whose message is safe to show at 3 a.m. (never a stack
trace, never a token); the HTTP plumbing for that is `bot.platforms.http`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

from bot.exceptions import NotFound


class DeployStatus(StrEnum):
    QUEUED = "queued"
    BUILDING = "building"
    DEPLOYING = "deploying"
    SUCCESS = "success"
    FAILED = "failed"
    CANCELLED = "cancelled"
    REMOVED = "removed"  # was live once, replaced since (Railway REMOVED, an old ReplicaSet)
    UNKNOWN = "unknown"

    @property
    def is_terminal(self) -> bool:
        return self in (DeployStatus.SUCCESS, DeployStatus.FAILED, DeployStatus.CANCELLED, DeployStatus.REMOVED)

    @property
    def step(self) -> int:
        """Position in queued → building → deploying → done, so progress never goes backwards."""
        return {"queued": 0, "building": 1, "deploying": 2}.get(self.value, 3)

    @property
    def emoji(self) -> str:
        return {
            "queued": "⏳",
            "building": "🔨",
            "deploying": "🚀",
            "success": "✅",
            "failed": "❌",
            "cancelled": "🚫",
            "removed": "📦",
            "unknown": "❔",
        }[self.value]


@dataclass(frozen=True)
class Deployment:
    id: str
    status: DeployStatus
    created_at: datetime | None = None
    url: str | None = None
    can_rollback: bool = False
    meta: dict[str, Any] = field(default_factory=dict)
    # Why it is not known to have run healthily while it was live (it crashed, it never became available,
    # the platform keeps no record of it), "" when nothing says so: never a default rollback target.
    doubt: str = ""
    live_until: datetime | None = None  # when it stopped being live (replaced), where the platform says
    # Known never to have served (a Vercel build staged, never promoted): the confirmation says so.
    never_live: bool = False
    # What the confirmation must warn of before a rollback to it (how the platform will go there, what the
    # bot cannot tell). Typed fields, not `meta`: a webhook receiver's own meta is passed through as it is.
    caveat: str = ""
    # Why the bot cannot be sure this is the deployment its own restart or rollback made (another one appeared
    # at the same moment and the platform does not say which is which), "" when it can: the report says it.
    unsure_which: str = ""

    @property
    def label(self) -> str:
        """What a person recognises a deployment by: commit message, image or version, when known."""
        for key in ("commitMessage", "commit_message", "version", "image", "commitHash", "commit"):
            value = self.meta.get(key)
            if isinstance(value, str) and value.strip():
                text = value.strip().splitlines()[0]
                return text if len(text) <= 60 else text[:59] + "…"
        return ""


@runtime_checkable
class Platform(Protocol):
    """A deploy target for one service."""

    kind: str  # "railway" | "vercel" | "kubernetes" | "webhook"
    display_name: str  # "Railway", shown to people

    async def current_deployment(self) -> Deployment | None:
        """What is live now; None when nothing is."""
        ...

    async def list_deployments(self, *, limit: int = 10) -> list[Deployment]:
        """Newest first. The order is the platform's notion of recency, which rollback relies on."""
        ...

    async def snapshot(self, *, limit: int = 10) -> tuple[list[Deployment], Deployment | None]:
        """`list_deployments(limit=limit)` and `current_deployment()` together, reading what they share once."""
        ...

    async def restart(self, redeploys: str | None = None) -> Deployment:
        """Restart what is live; returns the deployment to follow. `redeploys`: with nothing live, the
        deployment `restart_deploys` named on the confirmation, to deploy again exactly that one."""
        ...

    def restart_deploys(self, deployments: Sequence[Deployment], current: Deployment | None) -> Deployment | None:
        """What `restart` would deploy instead of restarting in place (nothing live), for the confirmation
        to name; None when it restarts what is live (or refuses). `deployments` is newest first."""
        ...

    def blocker(self, action: str, deployments: Sequence[Deployment], current: Deployment | None) -> str:
        """Why `action` ("restart" or "rollback") cannot work in this state, whatever deployment is picked
        (said on the confirmation instead of a Confirm button that can only fail), or "" when it can be
        tried. `deployments` is newest first."""
        ...

    async def rollback(self, target_id: str | None = None) -> Deployment:
        """Go back to `target_id`, or to the newest good deployment before the current one."""
        ...

    async def deployment_status(self, deployment_id: str) -> Deployment:
        """Fresh state of a deployment returned by restart/rollback (or listed)."""
        ...

    def canonical_id(self, typed: str) -> str:
        """The id a person typed (`/rollback api rev7`), spelled as this platform's deployment ids are.

        Each platform knows how its own people name a deployment; the shared picker compares only
        what this returns, so one platform's spelling never means something on another.
        """
        ...


# --- choosing what to roll back to -------------------------------------------------------------

ROLLBACK_OK = (DeployStatus.SUCCESS, DeployStatus.REMOVED)
# How many deployments a rollback looks through for an earlier good one: a run of failed builds since
# the last good deployment must not hide it, and an older one is no longer a sensible default.
ROLLBACK_LOOKBACK = 100


def rollback_candidates(deployments: Sequence[Deployment], current: Deployment | None) -> list[Deployment]:
    """Deployments older than the current one that once ran fine and the platform can roll back to.

    `deployments` is newest first; "older" means later in that list, not an earlier `created_at`,
    because Kubernetes reuses an old ReplicaSet (and its creation time) for a rollback.
    """
    ids = [d.id for d in deployments]
    if current is None or current.id in ids:
        start = ids.index(current.id) + 1 if current is not None else 0
        older = list(deployments[start:])
    else:
        # Live, yet older than every deployment listed (rolled back while new builds piled up): the
        # list's order says nothing, and its newest entry is what was rolled back from. Only those
        # created before the live one are older; without its time none are known to be.
        born = current.created_at
        older = [d for d in deployments if born is not None and d.created_at is not None and d.created_at < born]
    return [d for d in older if d.can_rollback and d.status in ROLLBACK_OK and not d.doubt]


def pick_rollback_target(
    deployments: Sequence[Deployment],
    current: Deployment | None,
    target_id: str | None = None,
    *,
    read: Callable[[str], str] | None = None,
) -> Deployment:
    """The deployment to roll back to, or NotFound naming what the user can pick instead.

    `target_id` is what the person typed, read by `read` (the platform's `canonical_id`; as typed when
    None): it matches an id exactly, or as a prefix of at least six characters.
    """
    if target_id is not None:
        deployment = _typed(deployments, (read or typed_as_shown)(target_id).strip())
        if current is not None and deployment.id == current.id:
            raise NotFound(f"deployment {deployment.id} is already the live one: nothing to roll back")
        if not deployment.can_rollback:
            raise NotFound(f"deployment {deployment.id} cannot be rolled back to ({deployment.status.value})")
        return deployment
    candidates = rollback_candidates(deployments, current)
    if not candidates and current is not None and current.id not in {d.id for d in deployments}:
        raise NotFound(
            f"the live deployment {current.id} is older than the last {len(deployments)} deployments, "
            "so which one came before it is not known: pick one by ID"
        )
    if not candidates:
        doubted = [d for d in deployments if d.doubt and d.can_rollback and (current is None or d.id != current.id)]
        if doubted:
            raise NotFound(
                "no earlier deployment is known to have run healthily "
                f"(the newest, {doubted[0].id}: {doubted[0].doubt}): pick one by ID if you trust it"
            )
        raise NotFound("no earlier successful deployment to roll back to")
    return candidates[0]


async def rollback_snapshot(
    platform: Platform, target_id: str | None, *, history: int
) -> tuple[list[Deployment], Deployment | None]:
    """The newest `history` deployments and the live one; when they hold no rollback target (a run of
    failed builds since the last good one, an ID older than them), up to ROLLBACK_LOOKBACK of them.
    Looked further only then: a platform that pages its list pays for each page."""
    deployments, current = await platform.snapshot(limit=history)
    if len(deployments) < history:
        return deployments, current
    try:
        pick_rollback_target(deployments, current, target_id, read=platform.canonical_id)
    except NotFound:
        return await platform.snapshot(limit=max(history, ROLLBACK_LOOKBACK))
    return deployments, current


def _typed(deployments: Sequence[Deployment], wanted: str) -> Deployment:
    """The deployment whose id is `wanted`, or the only one it starts (six characters at least).

    A prefix that starts two ids is refused, never read as the newer: rolling back to the wrong
    build at 3 a.m. is worse than typing a few more characters.
    """
    exact = [d for d in deployments if d.id == wanted]
    if exact:
        return exact[0]
    matches = [d for d in deployments if len(wanted) >= 6 and d.id.startswith(wanted)]
    if len(matches) == 1:
        return matches[0]
    if matches:
        ids = [d.id for d in matches]
        shown = ", ".join(_distinct_prefixes(ids, start=len(wanted) + 1)[:5]) + (" …" if len(ids) > 5 else "")
        raise NotFound(f"the ID {wanted} is ambiguous: {len(ids)} deployments start with it ({shown}); type more of it")
    shown = wanted if len(wanted) <= 80 else wanted[:79] + "…"
    raise NotFound(f"deployment {shown} is not among the last {len(deployments)} deployments")


def _distinct_prefixes(ids: Sequence[str], *, start: int) -> list[str]:
    """`ids` cut as short as still tells them apart (but no shorter than `start`), for a person to copy."""
    width = max(start, 8)
    while width < max(len(i) for i in ids) and len({i[:width] for i in ids}) < len(set(ids)):
        width += 1
    return [i if len(i) <= width else i[:width] + "…" for i in ids]


def typed_as_shown(typed: str) -> str:
    """`canonical_id` for a platform whose people type an id as the bot shows it (Railway, Vercel, a webhook)."""
    return typed.strip()
