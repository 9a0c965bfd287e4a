"""A bot with the dashboard turned on (Sign in with Slack against the fake Slack), a clock the
tests move, and a browser-like client that signs in the way a browser does."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import col, update

from bot.clock import FakeClock
from bot.incidents.models import Incident
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

SESSION_SECRET = "s" * 40


def dashboard_env(fake: FakeSlack) -> dict[str, Any]:
    return {
        "slack_oidc_client_id": fake.oidc.client_id,
        "slack_oidc_client_secret": fake.oidc.client_secret,
        "public_url": "http://127.0.0.1:1",  # replaced by the bot's real address once it listens
        "session_secret": SESSION_SECRET,
        "slack_authorize_url": fake.authorize_url,
    }


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def site(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any], clock: FakeClock
) -> AsyncIterator[BotHarness]:
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config, **dashboard_env(fake_slack)
    )
    async with running_bot(fake=fake_slack, settings=settings, clock=clock) as harness:
        harness.settings.public_url = harness.url
        fake_slack.oidc.redirect_urls = [f"{harness.url}/auth/slack/callback"]
        fake_slack.oidc.clock = clock
        yield harness


@dataclass
class Login:
    """The three hops of a sign-in, for tests that tamper with one of them."""

    authorize: str  # where /login sent the browser
    callback: str  # where Slack's authorize page sent it back


class Browser:
    """An httpx client with a cookie jar that never follows redirects, so each hop is checked."""

    def __init__(self, site: BotHarness) -> None:
        self.site = site
        self.http = httpx.AsyncClient(base_url=site.url, timeout=30, follow_redirects=False)

    async def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.get(path, **kwargs)

    async def post(self, path: str, data: dict[str, Any] | None = None) -> httpx.Response:
        return await self.http.post(path, data=data or {})

    async def start_login(self, next_path: str = "/") -> Login:
        response = await self.http.get("/login", params={"next": next_path})
        assert response.status_code == 303, response.text
        authorize = response.headers["location"]
        slack = await self.http.get(authorize)  # the fake's authorize page answers with a redirect back
        assert slack.status_code == 302, slack.text
        return Login(authorize=authorize, callback=slack.headers["location"])

    async def sign_in(self, user: str = "U0ALICE", next_path: str = "/") -> httpx.Response:
        self.site.fake.oidc.signed_in = user
        login = await self.start_login(next_path)
        response = await self.http.get(login.callback)
        assert response.status_code == 303, response.text
        return response

    async def csrf(self) -> str:
        page = await self.get("/")
        assert page.status_code == 200, page.text
        marker = 'name="csrf" value="'
        start = page.text.index(marker) + len(marker)
        return page.text[start : page.text.index('"', start)]

    async def close(self) -> None:
        await self.http.aclose()


@pytest.fixture
async def browser_client(site: BotHarness) -> AsyncIterator[Browser]:
    client = Browser(site)
    yield client
    await client.close()


async def new_client(site: BotHarness) -> Browser:
    return Browser(site)


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


async def make_private(site: BotHarness, number: int) -> None:
    async with site.deps.db.session() as session:
        await session.exec(update(Incident).where(col(Incident.id) == number).values(private=True))
        await session.commit()


@pytest.fixture
async def alice(site: BotHarness) -> AsyncIterator[Browser]:
    client = Browser(site)
    await client.sign_in("U0ALICE")
    yield client
    await client.close()


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match, "no CSRF field on the page"
    return match.group(1)
