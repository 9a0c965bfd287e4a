"""The Bolt app factory: no AsyncApp exists until settings say how to build one."""

from __future__ import annotations

import logging

import aiohttp
from slack_bolt.async_app import AsyncApp
from slack_bolt.logger.messages import warning_client_prioritized_and_token_skipped
from slack_sdk.http_retry.builtin_async_handlers import AsyncRateLimitErrorRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.slack import listeners

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
        logger=library_logger("bot.slack.web"),
    )
    client.retry_handlers.append(AsyncRateLimitErrorRetryHandler(max_retry_count=60))
    return client


def keep_alive(deps: Deps, client: AsyncWebClient) -> None:
    """One HTTP session for every Web API call, opened at start and closed last at shutdown.

    Without one, slack_sdk opens a new session, so a new connection (and TLS handshake), per call:
    measured at a third of the bot's CPU in a declare storm against a local Slack.
    """

    async def open_session() -> None:
        if client.session is None or client.session.closed:
            client.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=client.timeout))

    async def close_session() -> None:
        if client.session is not None:
            await client.session.close()

    deps.on_start.insert(0, open_session)
    deps.on_stop.insert(0, close_session)  # run in reverse: this one last


def library_logger(name: str) -> logging.Logger:
    """A logger for slack_sdk or Bolt, its level set to what the bot logs (LOG_LEVEL).

    Easy to miss: both libraries test the logger's own `level <= logging.DEBUG`, not its effective
    level, before they format a DEBUG line, and a logger left at NOTSET (0) passes that test. The
    client then formats every request and every response, body and headers, for logging to drop
    (py-spy over a storm of declarations: ~2 % of the event loop's busy time).
    """
    logger = logging.getLogger(name)
    logger.setLevel(logging.getLogger().getEffectiveLevel())
    return logger


def create_app(deps: Deps, client: AsyncWebClient) -> AsyncApp:
    """The Bolt app on the one client, with every listener registered (the last layer `bot.wiring` builds)."""
    secret = deps.settings.slack_signing_secret
    bolt_log = library_logger("bot.slack.bolt")
    if not any(isinstance(f, _EnvTokenNotice) for f in bolt_log.filters):
        bolt_log.addFilter(_EnvTokenNotice())
    app = AsyncApp(
        client=client,
        signing_secret=secret.get_secret_value() if secret else "socket-mode-unused",
        request_verification_enabled=True,
        process_before_response=False,
        logger=bolt_log,
    )
    listeners.register(app, deps)
    return app


class _EnvTokenNotice(logging.Filter):
    """Drops Bolt's start-up warning that it ignores `SLACK_BOT_TOKEN` because it was given a client.

    Bolt reads the variable even when handed a client (slackapi/bolt-python#983); our client is
    built from that very token, so the WARNING at every start says nothing an operator can act on.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != warning_client_prioritized_and_token_skipped()
