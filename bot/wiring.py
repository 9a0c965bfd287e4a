"""Builds the object graph in one direction, each layer from the ones before it:

1. infrastructure: settings, database, clock, the shared httpx client (`Deps`);
2. the Slack Web API client and every Slack adapter of a domain port (`bot.slack.adapters`);
3. the domain services, each given the adapters it uses (the escalator its pager, the status
   page its channel chat) and attached to `Deps` as typed attributes;
4. the Bolt app and its listeners, which call the domains.

Nothing is looked up by name and nothing is resolved later: a layer only sees what exists already.
`start` and `stop` run the hooks the layers registered. The CLI subcommands (`check`, `migrate`,
`postmortem`) need none of this: they open the database themselves.
"""

from __future__ import annotations

import logging

import httpx
from slack_bolt.async_app import AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot import observability
from bot.alerts import setup as alerts
from bot.archive import setup as archive
from bot.clock import Clock, SystemClock
from bot.db import Database
from bot.deps import Deps
from bot.escalation import setup as escalation
from bot.followups import setup as followups
from bot.incidents import recovery
from bot.ops import setup as ops
from bot.playbooks import setup as playbooks
from bot.postmortem import setup as postmortem
from bot.server import SlackAuthProbe
from bot.settings import Settings
from bot.slack import adapters
from bot.slack.adapters import DomainPorts
from bot.slack.app import create_app, create_client, keep_alive
from bot.statuspage import setup as statuspage

log = logging.getLogger(__name__)


def infrastructure(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    db: Database | None = None,
) -> Deps:
    """Layer 1: what talks to the outside world, nothing of Slack or of the domains yet."""
    deps = Deps(
        settings=settings,
        db=db or Database(settings.database_url),
        clock=clock or SystemClock(),
        http=http or httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False),
    )
    observability.setup(deps)  # secrets are masked in logs before anything can log one
    return deps


def slack(deps: Deps, client: AsyncWebClient | None = None) -> tuple[AsyncWebClient, DomainPorts]:
    """Layer 2: the one Web API client (a test's, or ours with a kept-alive session) and the adapters."""
    if client is None:
        client = create_client(deps)
        keep_alive(deps, client)
    deps.slack_auth = SlackAuthProbe(client, clock=deps.clock)
    return client, adapters.attach(deps, client)


def domains(deps: Deps, ports: DomainPorts) -> None:
    """Layer 3: the domain services. The order is that of their start hooks (stop runs in reverse)."""
    escalation.setup(deps, pager=ports.pager)
    recovery.setup(deps)
    alerts.setup(deps)
    playbooks.setup(deps)
    postmortem.setup(deps)
    ops.setup(deps)
    followups.setup(deps)
    archive.setup(deps)
    statuspage.setup(deps, chat=ports.public_chat)


def build(
    settings: Settings,
    *,
    clock: Clock | None = None,
    http: httpx.AsyncClient | None = None,
    client: AsyncWebClient | None = None,
    db: Database | None = None,
) -> tuple[Deps, AsyncApp]:
    """The whole bot: infrastructure, then Slack and its adapters, then the domains, then the listeners."""
    deps = infrastructure(settings, clock=clock, http=http, db=db)
    client, ports = slack(deps, client)
    domains(deps, ports)
    return deps, create_app(deps, client)  # layer 4: the Bolt app and its listeners


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
