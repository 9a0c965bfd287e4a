"""One place where Slack Web API errors become ChatError, with the step the bot was doing."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp
from slack_sdk.errors import SlackApiError, SlackClientError, SlackRequestError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.config import is_user_id
from bot.exceptions import ChannelNameTaken, ChatError, InviteIncomplete, MessageGone

log = logging.getLogger(__name__)


_TRIGGER_LATE = frozenset({"expired_trigger_id", "exchanged_trigger_id"})
# Slack will refuse every post (or edit) there: the channel was archived or deleted, or the bot removed
# from it. chat.postMessage answers is_archived for an archived channel, chat.update is_inactive.
CHANNEL_GONE = frozenset({"channel_not_found", "is_archived", "is_inactive", "not_in_channel"})
# The network or Slack failed on the way, so trying again may work: besides OSError and timeouts (a refused,
# reset or timed-out connection, DNS, TLS), slack_sdk lets aiohttp's own errors through, and some are no
# OSError: a keep-alive connection Slack or a proxy closed (ServerDisconnectedError, which slack_sdk tries
# once more, then raises), an answer cut short (ClientPayloadError).
# aiohttp's other ClientErrors (InvalidURL, a non-HTTP URL) say the request itself is wrong: bugs, not caught.
_UNREACHABLE = (
    SlackClientError,
    OSError,
    TimeoutError,
    aiohttp.ClientConnectionError,
    aiohttp.ClientPayloadError,
)


async def call(
    step: str, request: Awaitable[AsyncSlackResponse], *, expected: frozenset[str] = frozenset()
) -> AsyncSlackResponse:
    """Await a Web API call; failures become ChatError. `expected` codes are the caller's to handle, not logged."""
    try:
        return await request
    except SlackApiError as exc:
        code = str(exc.response.get("error", "")) if exc.response is not None else ""
        status = getattr(exc.response, "status_code", None)
        if not code and isinstance(status, int) and status >= 400:
            code = f"http_{status}"  # a gateway's error page carries no Slack code; callers retry these
        if code not in expected:
            log.warning("slack call failed: %s: %s", step, code or exc)
        if code == "name_taken":
            raise ChannelNameTaken(f"{step}: the name is taken", step=step, code=code) from exc
        if code == "message_not_found":
            raise MessageGone(f"{step}: the message was deleted", step=step, code=code) from exc
        if code in _TRIGGER_LATE:
            # A form must open within 3 s of the click or command; Slack's code alone tells a person nothing.
            message = f"{step}: Slack's 3 seconds to open it passed while the bot was busy. Please try again."
            raise ChatError(message, step=step, code=code) from exc
        raise ChatError(f"{step}: Slack answered {code or 'an error'}", step=step, code=code) from exc
    except SlackRequestError as exc:
        raise _request_error(step, exc) from exc
    except aiohttp.ClientResponseError as exc:
        raise _between_error(step, exc) from exc
    except _UNREACHABLE as exc:
        log.warning("slack call failed: %s: %s", step, exc)
        raise ChatError(f"{step}: could not reach Slack ({type(exc).__name__})", step=step, code="unreachable") from exc


# files_upload_v2 reports the upload URL's answer (a bare HTTP status: the URL is no Web API method) only
# in the message of the SlackRequestError it raises; network failures reach `call` as other exceptions.
_UPLOAD_STATUS = re.compile(r"Failed to upload a file \(status: (\d{3})\b")


def _request_error(step: str, exc: SlackRequestError) -> ChatError:
    """Slack was reached and refused, or the client would not send the request: not "unreachable". The upload
    URL's status becomes `http_<status>` (a 5xx stays transient, a 413 "too large" or other 4xx does not)."""
    match = _UPLOAD_STATUS.match(str(exc))
    if match is None:  # an argument the client refuses: sending it again will not do better
        log.warning("slack call failed: %s: %s", step, exc)
        return ChatError(f"{step}: the Slack client refused the request ({exc})", step=step, code="invalid_request")
    status = int(match.group(1))
    log.warning("slack call failed: %s: the upload URL answered HTTP %s", step, status)
    return ChatError(f"{step}: Slack's file upload answered HTTP {status}", step=step, code=f"http_{status}")


def _between_error(step: str, exc: aiohttp.ClientResponseError) -> ChatError:
    """Something between the bot and Slack answered instead of Slack: a proxy refused to connect, or redirects
    went round in circles. Its HTTP status is the code, as a gateway's is: a 502 or 503 is worth trying again,
    a 407 (the proxy wants credentials) is not."""
    log.warning("slack call failed: %s: %s", step, exc)
    code = f"http_{exc.status}" if exc.status else "unreachable"
    return ChatError(f"{step}: could not reach Slack ({type(exc).__name__} {exc.status})", step=step, code=code)


def data(response: AsyncSlackResponse) -> dict[str, Any]:
    return response.data if isinstance(response.data, dict) else {}


HistoryPage = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]


async def find_marked(
    read: HistoryPage, *, channel: str, oldest: datetime, metadata: dict[str, Any], author: str = "", pages: int = 5
) -> dict[str, Any] | None:
    """The message in `channel` since `oldest` that carries `metadata` (by `author`, when given), read a few
    pages of `conversations.history` at most through `read(kwargs)`: what a crash between posting and
    recording the post left behind, found instead of posted twice."""
    cursor = ""
    for _ in range(pages):
        kwargs: dict[str, Any] = {"channel": channel, "oldest": f"{oldest.timestamp():.6f}", "limit": 200}
        kwargs["include_all_metadata"] = True
        if cursor:
            kwargs["cursor"] = cursor
        body = await read(kwargs)
        for message in body.get("messages") or []:
            if message.get("metadata") == metadata and (not author or message.get("user") == author):
                return dict(message)
        cursor = str((body.get("response_metadata") or {}).get("next_cursor") or "")
        if not cursor:
            return None
    return None


# How much earlier than asked a history is read for a lost post, in case Slack's clock and ours differ.
CLOCK_SKEW = timedelta(minutes=10)


async def marked_in(
    client: Any,
    *,
    channel: str,
    since: datetime,
    metadata: dict[str, Any],
    step: str,
    expected: frozenset[str] = frozenset(),
) -> bool:
    """Whether `channel` holds a message carrying `metadata` since `since` (our clock, less `CLOCK_SKEW`): a post
    whose answer was lost. Pages, reminders and reminders to publish share it."""

    async def read(kwargs: dict[str, Any]) -> dict[str, Any]:
        return data(await call(step, client.conversations_history(**kwargs), expected=expected))

    return await find_marked(read, channel=channel, oldest=since - CLOCK_SKEW, metadata=metadata) is not None


_ALREADY_THERE = frozenset({"already_in_channel", "cant_invite_self"})
# Slack will not add this one person (deactivated, a guest, another workspace's, a channel cap):
# the others in the same call are still invited. Anything else (the channel is gone or archived,
# the bot is not in it, Slack is down) stops the invitations.
_PERSON_REFUSED = frozenset(
    {
        "cant_invite",
        "user_not_found",
        "user_disabled",
        "user_is_restricted",
        "org_user_not_in_team",
        "ura_max_channels",
        "invitee_cant_see_channel",
        "no_external_invite_permission",
    }
)


async def invite(client: Any, *, channel_id: str, users: list[str], step: str = "invite") -> None:
    """Invite people one by one (Slack refuses a whole call when one is a member); system actors are skipped.

    A person Slack refuses does not keep the rest out: all are tried. Any other failure stops the
    invitations. Either way one InviteIncomplete says who is in the channel (the caller records only
    them) and, in its message, whom Slack refused and why."""
    people = [user for user in users if is_user_id(user)]
    added: list[str] = []
    refused: dict[str, str] = {}
    for user in people:
        try:
            await call(step, client.conversations_invite(channel=channel_id, users=user), expected=_ALREADY_THERE)
        except ChatError as exc:
            if exc.code in _PERSON_REFUSED:
                refused[user] = exc.code
                continue
            if exc.code not in _ALREADY_THERE:
                message = "; ".join([str(exc), *([_refusals(step, refused)] if refused else [])])
                raise InviteIncomplete(message, step=step, code=exc.code, added=tuple(added)) from exc
        added.append(user)
    if refused:
        code = next(iter(refused.values()))
        raise InviteIncomplete(_refusals(step, refused), step=step, code=code, added=tuple(added))


def _refusals(step: str, refused: dict[str, str]) -> str:
    who = ", ".join(f"{user} ({code})" for user, code in refused.items())
    return f"{step}: Slack would not add {who}"


class UserHandles:
    """`@handle` → user ID for bot.yml targets and permissions, shared by every adapter.

    One `users.list` crawl at a time (it is paginated and tightly rate limited), refreshed after
    `ttl` seconds so new and renamed people are found without a restart.
    """

    def __init__(self, client: Any, *, ttl: float = 300.0) -> None:
        self.client = client
        self.ttl = ttl
        self._handles: dict[str, str] = {}
        self._loaded_at = float("-inf")
        self._lock = asyncio.Lock()

    async def lookup(self, handle: str) -> str | None:
        async with self._lock:
            if time.monotonic() - self._loaded_at > self.ttl:
                self._handles = await user_handles(self.client)
                self._loaded_at = time.monotonic()
        return self._handles.get(handle.lstrip("@").lower())


class GroupHandles:
    """`@handle` → user group ID, for a group named by its handle in bot.yml (`notify: ["@sre"]`).

    `python -m bot check` accepts a group's handle where a person's is looked for; a miss re-reads at once
    (the group may be new), a hit is kept for `ttl` seconds.
    """

    def __init__(self, client: Any, *, ttl: float = 300.0) -> None:
        self.client = client
        self.ttl = ttl
        self._groups: dict[str, str] = {}
        self._loaded_at = float("-inf")

    async def group_id(self, handle: str) -> str:
        wanted = handle.lstrip("@").lower()
        if wanted not in self._groups or time.monotonic() - self._loaded_at > self.ttl:
            groups = data(await call("list user groups", self.client.usergroups_list())).get("usergroups") or []
            self._groups = {str(g.get("handle", "")).lower(): str(g["id"]) for g in groups}
            self._loaded_at = time.monotonic()
        if wanted not in self._groups:
            raise ChatError(f"no user group with handle {handle}", step="list user groups", code="no_such_subteam")
        return self._groups[wanted]


async def user_handles(client: Any) -> dict[str, str]:
    """Every active user's handle and display name (lowercase) to their ID, for `@handle` in bot.yml."""
    handles: dict[str, str] = {}
    cursor: str | None = None
    while True:
        kwargs: dict[str, Any] = {"limit": 200}
        if cursor:
            kwargs["cursor"] = cursor
        body = data(await call("list users", client.users_list(**kwargs)))
        for member in body.get("members") or []:
            if member.get("deleted"):
                continue
            profile = member.get("profile") or {}
            for name in (member.get("name"), profile.get("display_name")):
                if name:
                    handles.setdefault(str(name).lower(), str(member["id"]))
        cursor = (body.get("response_metadata") or {}).get("next_cursor") or None
        if not cursor:
            return handles
