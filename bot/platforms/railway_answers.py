"""Reading Railway's answers: its GraphQL errors (a refused token, a rate limit, anything else in Railway's words),
and what can be said of the deployments listed after a rollback or redeploy.

Which deployment a rollback made: `deploymentRollback` and `serviceInstanceRedeploy` answer `Boolean!`, and
nothing on a `Deployment` says why it was made (`meta` is a JSON scalar the schema does not describe;
Railway's docs say only that a rollback restores the image and variables, so the deployment it makes looks
like the target, as would a redeploy of the same commit). What Railway's answers do give is time, on its own
clock: the mutation's answer has a `Date`, and each deployment a `createdAt`. A deployment created before the
mutation can have reached Railway (its answer's `Date` less the round trip and CLOCK_MARGIN) is another
deploy's (CI's, listed late), never followed. One created after it is taken for the action's; two or more are
named in the report, as is a lone one whose time cannot be compared (no `Date`, no `createdAt`).

Railway answers most failures as HTTP 200 with `errors` (a 429 with `Retry-After` is the HTTP layer's, in
`bot.platforms.http`). A rate limit inside a 200 says when to come back only in its headers, when at all:
`Retry-After` once the window is used up, `X-RateLimit-Reset` on every answer (Railway's API docs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from bot.exceptions import PlatformAuthError, PlatformError, PlatformRateLimited
from bot.platforms.base import Deployment, DeployStatus
from bot.platforms.http import http_date, rate_limit_wait

NAME = "Railway"

_AUTH_WORDS = re.compile(r"not authori[sz]ed|unauthori[sz]ed|forbidden|invalid token|unauthenticated", re.I)
_RATE_WORDS = re.compile(r"rate[ -]?limit|too many requests", re.I)


class ThrottledInAnswer(PlatformRateLimited):
    """A rate limit Railway reported inside a 200 answer, not as a 429. A read waits it out as it waits out a
    429 (`retry_after` from the headers). The restart or rollback itself is not sent again on it: Railway
    asks writes to be retried only after a 429 or no answer, so the person is told when to try again."""


def graphql_error(errors: Any, *, headers: Mapping[str, str], now: datetime) -> PlatformError:
    first = errors[0] if isinstance(errors, list) and errors and isinstance(errors[0], dict) else {}
    message = str(first.get("message") or "unknown error")
    code = str((first.get("extensions") or {}).get("code") or "")
    if code in ("UNAUTHENTICATED", "FORBIDDEN") or _AUTH_WORDS.search(message):
        return PlatformAuthError(
            f"Railway refused our token: {message}; check RAILWAY_TOKEN and its access to the project",
            platform=NAME,
        )
    if code in ("RATE_LIMITED", "TOO_MANY_REQUESTS") or _RATE_WORDS.search(message):
        wait = rate_limit_wait(headers, now=now)
        when = f"; try again in {wait:g} s" if wait is not None else ""
        return ThrottledInAnswer(f"Railway is rate-limiting the bot: {message}{when}", platform=NAME, retry_after=wait)
    more = f" (and {len(errors) - 1} more)" if isinstance(errors, list) and len(errors) > 1 else ""
    return PlatformError(f"Railway said: {message}{more}", platform=NAME)


def judged(deployments: list[Deployment], runs: dict[str, str]) -> list[Deployment]:
    """REMOVED deployments whose newest listed run crashed, marked so (see `railway.RUNS`)."""
    crashed = "its last run crashed before it was replaced (Railway's instance runs)"
    return [
        replace(d, doubt=crashed) if d.status is DeployStatus.REMOVED and runs.get(d.id) == "CRASHED" else d
        for d in deployments
    ]


def unsure_which(new: list[Deployment], action: str) -> str:
    """What the report says when more than one new deployment was listed after the mutation (`new`, newest
    first, the first one followed); "" when only one was."""
    if len(new) < 2:
        return ""
    others = ", ".join(f"{d.id} ({d.label})" if d.label else d.id for d in new[1:])
    return (
        f"another deployment started on Railway at the same moment ({others}), and Railway does not say which "
        f"one the {action} made: the bot followed the newest, {new[0].id}; check in Railway which one is the {action}"
    )


# Railway's answers and its database may keep slightly different time: a deployment created this much before
# the earliest moment the mutation can have reached Railway still counts as possibly the action's.
CLOCK_MARGIN = timedelta(seconds=5)


def sent_at(date: str | None, *, round_trip: float) -> datetime | None:
    """The earliest moment, on Railway's clock, the mutation can have reached Railway: its answer's `Date` (whole
    seconds) less the round trip measured here and CLOCK_MARGIN; None when the answer has no readable date."""
    answered = http_date(date)
    if answered is None:
        return None
    return answered - timedelta(seconds=max(0.0, round_trip)) - CLOCK_MARGIN


def made_before(new: Sequence[Deployment], sent: datetime | None) -> list[Deployment]:
    """The new deployments Railway lists as created before the mutation can have reached it: another deploy's."""
    if sent is None:
        return []
    return [d for d in new if d.created_at is not None and d.created_at < sent]


def cannot_tell(made: Deployment, action: str) -> str:
    """What the report says of a lone new deployment whose creation cannot be compared with the action's."""
    shown = f"{made.id} ({made.label})" if made.label else made.id
    return (
        f"could not tell the {action}'s deployment apart: followed {shown}, the only new one listed, but Railway "
        f"gave no time that shows it was made after the {action} was sent; check in Railway which one is the {action}"
    )


def only_earlier(earlier: Sequence[Deployment], action: str) -> str:
    """Why nothing was followed: what Railway listed was made before the action was sent (another deploy's)."""
    shown = ", ".join(f"{d.id} ({d.label})" if d.label else d.id for d in earlier[:3])
    return (
        f"lists no deployment made after it yet, only {shown}, made before the {action} was sent "
        "(another deploy), which the bot did not follow"
    )
