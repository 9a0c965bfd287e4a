"""Drop a signed request Slack (or a proxy, or an attacker replaying a capture) delivers twice.

Bolt has verified the signature before this runs. A signature covers the timestamp and the body,
so a second request with the same signature is the same delivery; events are deduplicated by
`event_id` in their listeners instead, because Slack re-signs its retries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable

from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot.deps import Deps
from bot.timeline import service as timeline


def register(app: AsyncApp, deps: Deps) -> None:
    @app.middleware
    async def drop_replays(
        req: AsyncBoltRequest, resp: BoltResponse, next: Callable[[], Awaitable[BoltResponse]]
    ) -> BoltResponse:
        signature = (req.headers.get("x-slack-signature") or [""])[0]
        if not signature or req.body.get("type") == "event_callback" or req.mode == "socket_mode":
            return await next()
        key = hashlib.sha256(signature.encode()).hexdigest()[:64]
        async with deps.db.session() as session:
            first = await timeline.first_request(session, signature=key, at=deps.clock.now())
        if not first:
            return BoltResponse(status=200, body="")
        return await next()
