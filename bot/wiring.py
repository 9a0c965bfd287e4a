"""Builds the object graph: Deps, each domain's setup(deps), the Bolt app, and start/stop."""

from __future__ import annotations

import importlib
import logging

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, SystemClock
from bot.db import Database
from bot.deps import Deps
from bot.settings import Settings

log = logging.getLogger(__name__)

# Domains that subscribe to signals or attach services. Each module has `setup(deps) -> None`.
DOMAIN_SETUPS: list[str] = [
    "bot.escalation.setup",
    "bot.incidents.recovery",
    "bot.observability",
    "bot.alerts.setup",
    "bot.playbooks.setup",
    "bot.postmortem.setup",
    "bot.ops.setup",
    "bot.followups.setup",
    "bot.archive.setup",
    "bot.statuspage.setup",
]


def build_deps(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    db: Database | None = None,
) -> Deps:
    deps = Deps(
        settings=settings,
        db=db or Database(settings.database_url),
        clock=clock or SystemClock(),
        http=http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False),
    )
    for name in DOMAIN_SETUPS:
        importlib.import_module(name).setup(deps)
    return deps


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    client: AsyncWebClient | None = None,
    db: Database | None = None,
) -> tuple[Deps, AsyncApp]:
    from bot.slack.app import create_app

    deps = build_deps(settings, clock=clock, http=http, db=db)
    app = create_app(deps, client=client)
    return deps, app


async def start(deps: Deps) -> None:
    await deps.db.migrate()
    for hook in deps.on_start:
        await hook()


async def stop(deps: Deps) -> None:
    for hook in reversed(deps.on_stop):
        try:
            await hook()
        except Exception:
            log.exception("shutdown hook failed")
    await deps.background.drain()
    await deps.http.aclose()
    await deps.db.dispose()
