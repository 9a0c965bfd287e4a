"""One place where Slack Web API errors become ChatError, with the step the bot was doing."""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from typing import Any

from slack_sdk.errors import SlackApiError, SlackClientError
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.exceptions import ChannelNameTaken, ChatError

log = logging.getLogger(__name__)


async def call(step: str, request: Awaitable[AsyncSlackResponse]) -> AsyncSlackResponse:
    try:
        return await request
    except SlackApiError as exc:
        code = str(exc.response.get("error", "")) if exc.response is not None else ""
        log.warning("slack call failed: %s: %s", step, code or exc)
        if code == "name_taken":
            raise ChannelNameTaken(f"{step}: the name is taken", step=step, code=code) from exc
        raise ChatError(f"{step}: Slack answered {code or 'an error'}", step=step, code=code) from exc
    except (SlackClientError, OSError, TimeoutError) as exc:
        log.warning("slack call failed: %s: %s", step, exc)
        raise ChatError(f"{step}: could not reach Slack ({type(exc).__name__})", step=step, code="unreachable") from exc


def data(response: AsyncSlackResponse) -> dict[str, Any]:
    return response.data if isinstance(response.data, dict) else {}


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
