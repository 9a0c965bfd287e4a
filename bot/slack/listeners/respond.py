"""Every listener's `respond` posts on the Slack client's kept-alive session (`bot.slack.respond`)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest

from bot.deps import Deps
from bot.slack.respond import SharedRespond


def register(app: AsyncApp, deps: Deps) -> None:
    async def shared_respond(req: AsyncBoltRequest, next: Callable[[], Awaitable[Any]]) -> Any:
        # Bolt puts its own `respond` in the context when the request has a response_url; listeners
        # get what the context holds (as `observe` does for `ack`). Before start() opens the session,
        # Bolt's own stays.
        url = req.context.response_url
        session = deps.slack_client.session if deps.slack_client is not None else None
        if url and session is not None and not session.closed:
            req.context["respond"] = SharedRespond(response_url=url, session=session)
        return await next()

    app.middleware(shared_respond)
