"""The HTTP plumbing every deploy platform shares: one way to send, and every failure a PlatformError
whose message is safe to show at 3 a.m. (never a stack trace, never a token)."""

from __future__ import annotations

import email.utils
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from bot.clock import Clock, SystemClock
from bot.exceptions import PlatformAuthError, PlatformError, PlatformRateLimited, PlatformTimeout, PlatformUnsure

DEFAULT_REQUEST_TIMEOUT = 15.0


class Endpoint:
    """Sends requests for one platform and turns every failure into a PlatformError."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        display_name: str,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        clock: Clock | None = None,
    ):
        self.http = http
        self.display_name = display_name
        self.timeout = timeout
        self.clock: Clock = clock or SystemClock()  # what a Retry-After date is counted from

    async def send(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        json_body: Any = None,
        content: bytes | None = None,
        not_found: str | None = None,
    ) -> httpx.Response:
        name = self.display_name
        try:
            response = await self.http.request(
                method,
                url,
                headers=dict(headers or {}),
                params={k: v for k, v in (params or {}).items() if v is not None} or None,
                json=json_body,
                content=content,
                timeout=self.timeout,
            )
        except httpx.TimeoutException as exc:
            raise PlatformTimeout(
                f"{name} did not answer within {self.timeout:g} s; it may be having an outage, try again shortly",
                platform=name,
                reason=f"no answer within {self.timeout:g} s",
            ) from exc
        except httpx.HTTPError as exc:
            host = httpx.URL(url).host or url
            reason = str(exc) or type(exc).__name__
            message = f"could not reach {name} at {host}: {reason}"
            if isinstance(exc, httpx.ConnectError):  # never sent: nothing happened
                raise PlatformError(message, platform=name) from exc
            raise PlatformUnsure(message, platform=name, reason=f"connection lost: {reason}") from exc
        raise_for_status(response, platform=name, now=self.clock.now(), not_found=not_found)
        return response


def raise_for_status(response: httpx.Response, *, platform: str, now: datetime, not_found: str | None = None) -> None:
    """A refusal as a PlatformError; `now` (the injected clock's) is what a rate limit's date is counted from."""
    status = response.status_code
    if status < 400:
        return
    detail = error_detail(response)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        raise PlatformAuthError(
            f"{platform} refused our credentials (HTTP {status}){suffix}; check the token and its access",
            platform=platform,
        )
    if status == 429:
        retry = rate_limit_wait(response.headers, now=now)
        when = f"in {retry:g} s" if retry is not None else "in a minute"
        raise PlatformRateLimited(
            f"{platform} is rate-limiting the bot; try again {when}", platform=platform, retry_after=retry
        )
    if status == 404 and not_found:
        raise PlatformError(f"{not_found}{suffix}", platform=platform, status=status, detail=detail)
    if status >= 500:
        # A gateway's 502/504 often means the platform did the work and the answer was lost.
        raise PlatformUnsure(
            f"{platform} had an internal error (HTTP {status}){suffix}; try again shortly",
            platform=platform,
            reason=f"HTTP {status}{suffix}",
        )
    raise PlatformError(
        f"{platform} rejected the request (HTTP {status}){suffix}", platform=platform, status=status, detail=detail
    )


def error_detail(response: httpx.Response) -> str:
    """The vendor's own error message, when the body carries one, cut short."""
    try:
        data = response.json()
    except (ValueError, UnicodeDecodeError):
        text = response.text.strip() if response.content else ""
        return one_line(text) if text and not text.startswith("<") else ""
    message: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("code")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message")
        errors = data.get("errors")
        if not message and isinstance(errors, list) and errors and isinstance(errors[0], dict):
            message = errors[0].get("message")
    return one_line(str(message)) if message else ""


def retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds from a Retry-After header: a number, or an HTTP date counted from `now` (the injected clock)."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        return _until(value, now=now)


def rate_limit_wait(headers: Mapping[str, str], *, now: datetime) -> float | None:
    """Seconds until a throttled client may ask again, from `Retry-After` or else `X-RateLimit-Reset`: one rule
    for a 429 and for a rate limit inside a 200.

    A vendor may send only its reset time (Railway, on a 429 as on a throttle in its GraphQL `errors`). Its
    format is rarely documented (Railway's docs say only "the time at which the current window ends"), so
    an epoch in seconds or milliseconds, an HTTP or ISO date, and a small number of seconds are all read.
    """
    wait = retry_after(headers.get("retry-after"), now=now)
    if wait is not None:
        return wait
    value = (headers.get("x-ratelimit-reset") or "").strip()
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return _until(value, now=now)
    if number > 10**11:  # epoch milliseconds
        number /= 1000
    if number > 10**9:  # epoch seconds
        return max(0.0, number - now.timestamp())
    return max(0.0, number)  # seconds from now


def _until(value: str, *, now: datetime) -> float | None:
    """Seconds from `now` to a date given as an HTTP date (or ISO 8601); None when it is neither."""
    when = http_date(value) or parse_time(value)
    return None if when is None else max(0.0, (when - now).total_seconds())


def http_date(value: str | None) -> datetime | None:
    """An HTTP date (a `Date` or `Retry-After` header), aware; None when it is not one."""
    try:
        when = email.utils.parsedate_to_datetime(value) if value else None
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when


def json_of(response: httpx.Response, *, platform: str) -> Any:
    try:
        return response.json()
    except (ValueError, UnicodeDecodeError) as exc:
        raise PlatformError(
            f"{platform} answered HTTP {response.status_code} with something that is not JSON", platform=platform
        ) from exc


def parse_time(value: Any) -> datetime | None:
    """ISO 8601 strings and epoch milliseconds (Vercel) to aware UTC."""
    if value is None or value == "":
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        seconds = value / 1000 if value > 10**11 else value
        return datetime.fromtimestamp(seconds, UTC)
    if isinstance(value, str):
        text = value.strip()
        if text.isdigit():
            return parse_time(int(text))
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    return None


def dumps(value: Any) -> bytes:
    """Compact, stable JSON: what we sign is exactly what we send."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, default=str).encode()


def one_line(text: str, limit: int = 200) -> str:
    """`text` on one line (runs of white space made one space), cut to `limit` characters with "…"."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
