"""Reading Railway's answers: its GraphQL errors (a refused token, a rate limit, anything else in Railway's words),
and what can be said of the deployments listed after a rollback or redeploy.

Railway answers most failures as HTTP 200 with `errors` (a 429 with `Retry-After` is the HTTP layer's, in
`bot.platforms.http`). A rate limit inside a 200 says when to come back only in its headers, when at all:
`Retry-After` once the window is used up, `X-RateLimit-Reset` on every answer (Railway's API docs).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from bot.exceptions import PlatformAuthError, PlatformError, PlatformRateLimited
from bot.platforms.base import Deployment
from bot.platforms.http import rate_limit_wait

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
