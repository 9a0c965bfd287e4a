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
