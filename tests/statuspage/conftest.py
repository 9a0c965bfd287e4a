"""A bot with a status page and Atlassian Statuspage configured, against the fake Slack and fake Statuspage."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot.clock import FakeClock
from bot.statuspage import service
from bot.statuspage.models import StatuspageSync
from bot.statuspage.runtime import StatusPage
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness, running_bot

API_KEY = "sp-key-0123"
CONFIG: dict[str, Any] = {
    "services": {
        "api": {"health_url": "http://health.test/api"},
        "web": {"health_url": "http://health.test/web"},
        "billing": {},
    },
    "status_page": {
        "title": "Acme status",
        "components": {"Checkout API": ["api"], "Website": ["web"]},
        "statuspage": {
            "page_id": "pg_test",
            "api_key_env": "STATUSPAGE_API_KEY",
            "components": {"api": "cmp_api", "web": "cmp_web"},
        },
    },
}


class Health:
    """The services' health endpoints, answered in-process: `states[service]` is the body's status word."""

    def __init__(self) -> None:
        self.states: dict[str, str] = {"api": "ok", "web": "ok"}
        self.real = httpx.AsyncHTTPTransport()

    async def handle(self, request: httpx.Request) -> httpx.Response:
        if request.url.host != "health.test":
            return await self.real.handle_async_request(request)
        state = self.states.get(request.url.path.strip("/"), "ok")
        return httpx.Response(200 if state != "down" else 503, json={"status": state})

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(transport=httpx.MockTransport(self.handle), timeout=10)


@pytest.fixture
async def statuspage() -> AsyncIterator[FakeStatuspage]:
    fake = FakeStatuspage(api_key=API_KEY)
    await fake.start()
    yield fake
    await fake.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(datetime.now(UTC).replace(microsecond=0))


@pytest.fixture
def health() -> Health:
    return Health()


@pytest.fixture
def page_config() -> dict[str, Any]:
    return CONFIG


@pytest.fixture
def page_settings() -> dict[str, Any]:
    """More settings for `sbot` (a module overrides this fixture, e.g. with `public_url`)."""
    return {}


@pytest.fixture
async def sbot(
    fake_slack: FakeSlack,
    statuspage: FakeStatuspage,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
    health: Health,
    page_config: dict[str, Any],
    page_settings: dict[str, Any],
) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("STATUSPAGE_API_KEY", API_KEY)
    settings = make_settings(
        fake=fake_slack,
        database_url=database_url,
        tmp_path=tmp_path,
        config=page_config,
        statuspage_api_url=statuspage.url,
        **page_settings,
    )
    async with running_bot(fake=fake_slack, settings=settings, clock=clock, http=health.client()) as harness:
        yield harness


StartBot = Callable[..., AbstractAsyncContextManager[BotHarness]]


@pytest.fixture
def start_page_bot(
    fake_slack: FakeSlack,
    statuspage: FakeStatuspage,
    database_url: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    clock: FakeClock,
    health: Health,
) -> StartBot:
    """`async with start_page_bot() as bot`: a bot like `sbot` (or with another config), started anew each
    time on the test's database, fakes and clock: what a restart test needs."""
    monkeypatch.setenv("STATUSPAGE_API_KEY", API_KEY)

    def start(config: dict[str, Any] = CONFIG) -> AbstractAsyncContextManager[BotHarness]:
        settings = make_settings(
            fake=fake_slack,
            database_url=database_url,
            tmp_path=tmp_path,
            config=config,
            statuspage_api_url=statuspage.url,
        )
        return running_bot(fake=fake_slack, settings=settings, clock=clock, http=health.client())

    return start


def page_of(bot: BotHarness) -> StatusPage:
    assert bot.deps.status_page is not None
    return bot.deps.status_page


async def published(bot: BotHarness, text: str, *, impact: str = "critical") -> str:
    """A P1 on `api`, published with `impact` (a critical outage) and `text`; its channel."""
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command(f"publish {impact} {text}", channel=channel)
    await bot.settle()
    return channel


async def outbox_check(bot: BotHarness) -> dict[str, Any]:
    """/health's check of the Statuspage outbox."""
    async with httpx.AsyncClient(base_url=bot.url) as client:
        check: dict[str, Any] = (await client.get("/health")).json()["checks"]["statuspage:outbox"][0]
    return check


async def sync_rows(bot: BotHarness, *, incident_id: int = 1) -> list[StatuspageSync]:
    async with bot.deps.db.session() as session:
        return await service.syncs(session, incident_id=incident_id)


async def public(bot: BotHarness) -> tuple[dict[str, Any], str, str]:
    """summary.json, the HTML page and the Atom feed, as a reader gets them."""
    async with httpx.AsyncClient(base_url=bot.url) as client:
        summary = await client.get("/status-page/api/v2/summary.json")
        html = await client.get("/status-page")
        atom = await client.get("/status-page/history.atom")
    for response in (summary, html, atom):
        assert response.status_code == 200, response.text
    return summary.json(), html.text, atom.text
