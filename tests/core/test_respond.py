"""Listeners' replies go to response_url on the Slack client's kept-alive session (`bot.slack.respond`)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import aiohttp

from bot.deps import Deps
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot


async def test_a_reply_goes_out_on_the_slack_clients_session_not_one_of_its_own(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    posted: list[str] = []

    async def request_start(
        _session: aiohttp.ClientSession, _context: SimpleNamespace, params: aiohttp.TraceRequestStartParams
    ) -> None:
        posted.append(f"{params.method} {params.url.path}")

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(request_start)

    def customize(deps: Deps) -> None:
        # The session the Web API client keeps open (start() keeps one that is there already).
        assert deps.slack_client is not None
        deps.slack_client.session = aiohttp.ClientSession(trace_configs=[trace])

    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path)
    async with running_bot(fake=fake_slack, settings=settings, customize=customize) as bot:
        await bot.declare("P3 Checkout latency")
        await bot.command("list")
        replies = [p for p in posted if "/respond/" in p]
        assert replies and all(p.startswith("POST ") for p in replies)
        assert len(replies) == len(bot.fake.responses) == 2
        assert "INC-1" in bot.replies()[0] and "INC-1" in bot.last_reply()
    assert any("/api/conversations.create" in p for p in posted)  # the same session as the Web API calls
