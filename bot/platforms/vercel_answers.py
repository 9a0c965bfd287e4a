"""Reading Vercel's answers: a deployment in the common vocabulary, whether it ever served production,
and a refusal in words. The client that asks is `bot.platforms.vercel`; its docstring says which
fields are read and why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from bot.exceptions import PlatformError
from bot.platforms.base import Deployment, DeployStatus
from bot.platforms.http import parse_time

NAME = "Vercel"

_STATUS = {
    "QUEUED": DeployStatus.QUEUED,
    "INITIALIZING": DeployStatus.QUEUED,
    "BUILDING": DeployStatus.BUILDING,
    "READY": DeployStatus.SUCCESS,
    "ERROR": DeployStatus.FAILED,
    "CANCELED": DeployStatus.CANCELLED,
    "DELETED": DeployStatus.REMOVED,
}
ALIAS_STATUS = {
    "pending": DeployStatus.DEPLOYING,
    "in-progress": DeployStatus.DEPLOYING,
    "succeeded": DeployStatus.SUCCESS,
    "failed": DeployStatus.FAILED,
    # The alias job did not run (a newer alias change superseded it): our target is not live.
    "skipped": DeployStatus.CANCELLED,
}


def deployment_of(item: dict[str, Any]) -> Deployment:
    raw = str(item.get("readyState") or item.get("state") or item.get("status") or "").upper()
    status = _STATUS.get(raw, DeployStatus.UNKNOWN)
    url = item.get("url")
    if url and "://" not in url:
        url = f"https://{url}"
    raw_meta = item.get("meta")
    source_meta: dict[str, Any] = raw_meta if isinstance(raw_meta, dict) else {}
    meta: dict[str, Any] = {"platform_status": raw, "name": item.get("name")}
    message = source_meta.get("githubCommitMessage") or source_meta.get("gitlabCommitMessage")
    if message:
        meta["commitMessage"] = message
    sha = source_meta.get("githubCommitSha") or source_meta.get("gitlabCommitSha")
    if sha:
        meta["commitHash"] = sha
    production = item.get("target") in ("production", None)
    doubt = _never_served(item) if status is DeployStatus.SUCCESS and production else ""
    caveat = (
        "Vercel's instant rollback takes only a deployment that served production, so the bot promotes it "
        "instead: it serves production for the first time"
        if doubt
        else ""
    )
    return Deployment(
        id=str(item.get("uid") or item.get("id")),
        status=status,
        created_at=parse_time(item.get("created") or item.get("createdAt")),
        url=url,
        can_rollback=status is DeployStatus.SUCCESS and production,
        meta=meta,
        doubt=doubt,
        never_live=bool(doubt),
        caveat=caveat,
    )


def refusal(exc: PlatformError, action: str) -> str:
    """Why Vercel refused a rollback or promote, in words; its own message after them."""
    said = f" (Vercel said: {exc.detail})" if exc.detail else ""
    if exc.status == 402:
        hint = "; on the Hobby plan Vercel rolls back only to the previous production deployment"
        return f"the Vercel plan does not allow this {action}{said}{hint}"
    if exc.status == 409:
        why = "Vercel has another change of production under way; check the project's deployments"
    elif exc.status in (400, 404, 422):
        why = f"Vercel does not take this deployment for a {action}"
    else:
        return str(exc)
    return why + said


def _never_served(item: dict[str, Any]) -> str:
    """Why a READY production deployment is known never to have served production, or "".

    READY is only a finished build: one deployed without the production domain (skip-domain, staged
    for a later promote) or whose alias failed looks the same. Vercel's `readySubstate` says it best
    (PROMOTED: has seen production traffic); without it, an alias error or an explicit `false` does.
    A missing or null field says nothing: an older answer must not cost the rollback its targets.
    """
    substate = str(item.get("readySubstate") or "").upper()
    if substate in ("PROMOTED", "ROLLING"):
        return ""
    if substate == "STAGED":
        return "it never served production traffic (Vercel lists it as staged, never promoted)"
    error = item.get("aliasError")
    if isinstance(error, dict) and error:
        detail = error.get("message") or error.get("code") or "no detail given"
        return f"assigning it the production domain failed ({detail})"
    if item.get("aliasAssigned") is False:
        return "it was never assigned the production domain"
    if item.get("isRollbackCandidate") is False:
        return "Vercel does not offer it for instant rollback (only deployments that served production are)"
    return ""


def with_status(deployment: Deployment, status: DeployStatus, *, alias_job: str, note: str = "") -> Deployment:
    meta = {**deployment.meta, "alias_job": alias_job} if alias_job else deployment.meta
    if note:
        meta = {**meta, "note": note}
    return replace(deployment, status=status, meta=meta)


def promotes(target: Deployment, current: Deployment | None) -> bool:
    """Whether production goes to `target` by a promote, not an instant rollback: going forward again
    (undoing an earlier rollback), or to a deployment that never served it, which instant rollback does
    not take."""
    newer = (
        current is not None
        and target.created_at is not None
        and current.created_at is not None
        and target.created_at > current.created_at
    )
    return newer or target.never_live


def ending_rollback(target: Deployment) -> Deployment:
    """`target` with the confirmation's warning that promoting it, while the project is rolled back, ends
    the rollback: Vercel documents that a promote re-enables the automatic assignment of production domains."""
    why = target.caveat or "it is newer than the live one, so the bot promotes it"
    ends = (
        "the project is rolled back now, and a promote ends that: Vercel assigns the production domains by "
        "itself again, so the next push to the production branch goes live without anyone promoting it"
    )
    return replace(target, caveat=f"{why}; {ends}")
