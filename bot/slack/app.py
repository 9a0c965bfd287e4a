"""The Bolt app factory: no AsyncApp exists until settings say how to build one."""

from __future__ import annotations

import logging

from slack_bolt.async_app import AsyncApp
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.slack import adapters, listeners

log = logging.getLogger(__name__)


def create_client(deps: Deps) -> AsyncWebClient:
    """The one Web API client: Slack's 429 answers are retried after Retry-After.

    Rate limits are per method, and tier-2 methods (conversations.create) allow about 20 a
    minute, so a storm of declares can see long 429 streaks: keep waiting rather than give up.
    The incident adapter also paces conversations.create so waiters do not retry in lockstep.
    """
    token = deps.settings.slack_bot_token
    client = AsyncWebClient(
        token=token.get_secret_value() if token else None,
        base_url=deps.settings.slack_api_url,
        timeout=15,
    )
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=60))
    return client


def create_app(deps: Deps, *, client: AsyncWebClient | None = None) -> AsyncApp:
    client = client or create_client(deps)
    secret = deps.settings.slack_signing_secret
    app = AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "socket-mode-unused",
        request_verification_enabled=True,
        process_before_response=False,
        logger=logging.getLogger("bot.slack.bolt"),
    )
    adapters.attach(deps, client)
    listeners.register(app, deps)
    return app
