"""The trackers' shared HTTP: requests retried through rate limits and 5xx, a create never sent twice blindly.

A wait the tracker asks for is honoured up to `max_wait`; longer, and the click is told to try later. That
includes a 5xx that says when to come back (`busy`: Jira's 503 with Retry-After, which Atlassian says may
be handled as a 429). A create whose outcome is unknown (no answer, 5xx, that 503 too) is followed by
`find` (the issue by the token it was sent with) before another create. Each vendor's details are in trackers.py.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from bot.followups.ports import Issue, NewIssue, TrackerError, TrackerRateLimited

log = logging.getLogger(__name__)

Sleep = Callable[[float], Awaitable[None]]
ATTEMPTS = 4
MAX_WAIT = 30.0  # seconds we wait in-line for a rate limit before giving up for now


class _Unsure(Exception):
    """A create got no answer that says whether it was made (transport error or 5xx); `wait`: the
    seconds the tracker asked for before it is asked again (a 5xx with Retry-After)."""

    def __init__(self, message: str, *, wait: float | None = None) -> None:
        super().__init__(message)
        self.wait = wait


def seconds(value: str | None) -> float | None:
    try:
        return max(0.0, float(value)) if value not in (None, "") else None
    except ValueError:
        return None


class HttpTracker:
    kind = ""
    label = ""
    # The least wait before a create whose answer was lost is looked for (`create`): a look-up the vendor's
    # search answers from an index that lags (Jira's) would miss an issue made a moment ago, and make it twice.
    look_after = 0.0

    def __init__(
        self, *, http: httpx.AsyncClient, sleep: Sleep = asyncio.sleep, max_wait: float = MAX_WAIT, token_env: str = ""
    ) -> None:
        self.http = http
        self.sleep = sleep
        self.max_wait = max_wait
        # Named in what a refusal tells people to check: where bot.yml says the token is.
        self.token_env = token_env or "named by issue_tracker.token_env"

    def throttled(self, response: httpx.Response) -> float | None:
        """Seconds to wait when the response says "slow down", else None."""
        if response.status_code == 429:
            return seconds(response.headers.get("retry-after")) or 5.0
        return None

    def busy(self, response: httpx.Response) -> float | None:
        """Seconds to wait when a 5xx says when to come back (Retry-After), else None: such an answer is
        waited out as a rate limit is, rather than retried on the bot's own schedule."""
        return None

    async def send(self, method: str, url: str, *, unsafe: bool = False, **kwargs: Any) -> httpx.Response:
        """The request, retried through rate limits and 5xx; a TrackerError for anything else that failed.
        `unsafe` (a create): no answer or a 5xx raises _Unsure instead of sending it again."""
        for attempt in range(1, ATTEMPTS + 1):
            try:
                response = await self.http.request(method, url, **kwargs)
            except httpx.HTTPError as exc:
                if unsafe:
                    raise _Unsure(type(exc).__name__) from exc
                if attempt == ATTEMPTS:
                    raise TrackerError(f"{self.label} is unreachable ({type(exc).__name__})") from exc
                await self.sleep(min(2.0**attempt, self.max_wait))
                continue
            wait = self._wait(response, attempt=attempt, unsafe=unsafe)
            if wait is None:
                return response
            log.info("%s asked the bot to wait %.1f s (HTTP %s)", self.label, wait, response.status_code)
            await self.sleep(wait)
        raise AssertionError("unreachable")

    def _wait(self, response: httpx.Response, *, attempt: int, unsafe: bool) -> float | None:
        """Seconds to wait before sending the request again; None: this answer stands. Raises when it is
        not sent again: waited long enough, or a create whose outcome is unknown (`_Unsure`)."""
        code = response.status_code
        busy = self.busy(response)
        if busy is not None and unsafe:
            raise _Unsure(f"HTTP {code}", wait=busy)
        wait = self.throttled(response) if busy is None else busy
        failing = wait is None and code >= 500
        if failing and unsafe:
            raise _Unsure(f"HTTP {code}")
        if failing and attempt == ATTEMPTS:  # down, not slowing us down: say so
            raise TrackerError(f"{self.label} is failing (HTTP {code} {ATTEMPTS} times); try later")
        if failing:
            return min(2.0**attempt, self.max_wait)
        if wait is not None and (wait > self.max_wait or attempt == ATTEMPTS):
            raise self.limited(wait, busy=busy is not None)
        return wait

    def limited(self, wait: float, *, busy: bool = False) -> TrackerRateLimited:
        why = "is overloaded and asked the bot to come back later" if busy else "is rate-limiting the bot"
        return TrackerRateLimited(f"{self.label} {why}; try again in {int(wait) + 1} s", retry_after=wait)

    async def create(self, issue: NewIssue) -> Issue:
        for attempt in range(1, ATTEMPTS + 1):
            try:
                return await self.create_once(issue)
            except _Unsure as exc:
                if exc.wait is not None and exc.wait > self.max_wait:
                    # Its outcome is unknown: the next attempt (its token is kept) looks the issue up first.
                    raise self.limited(exc.wait, busy=True) from exc
                if attempt == ATTEMPTS:
                    raise TrackerError(
                        f"{self.label} did not say whether the issue was created ({exc}); try again"
                    ) from exc
                log.info(
                    "%s: no clear answer to a create (%s); looking for the issue before trying again", self.label, exc
                )
                wait = exc.wait if exc.wait is not None else min(2.0**attempt, self.max_wait)
                await self.sleep(max(wait, self.look_after) if issue.token else wait)
                found = await self.find(token=issue.token) if issue.token else None
                if found is not None:
                    return found
        raise AssertionError("unreachable")

    async def create_once(self, issue: NewIssue) -> Issue:
        raise NotImplementedError

    async def find(self, *, token: str) -> Issue | None:
        raise NotImplementedError

    def refused(self, response: httpx.Response, what: str) -> TrackerError:
        """A refusal that says what to check (the bot.yml setting and its value, or the token), as the
        person who clicked cannot act on the tracker's own words; those are kept when nothing more is known."""
        code = response.status_code
        advice = self.advice(response)
        if advice:
            return TrackerError(f"{self.label} could not {what} (HTTP {code}): {advice}")
        if code in (401, 403):
            return TrackerError(
                f"{self.label} refused the token while trying to {what} (HTTP {code}): "
                f"check the token in the environment variable {self.token_env} and what it may do"
            )
        detail = response.text[:200].replace("\n", " ")
        return TrackerError(f"{self.label} could not {what}: HTTP {code} {detail}")

    def advice(self, response: httpx.Response) -> str:
        """What to check for this refusal, in the vendor's terms; "" when there is nothing better to say."""
        return ""
