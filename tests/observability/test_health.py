"""GET /health: database, scheduler and Slack auth, as application/health+json."""

from __future__ import annotations

import asyncio

import pytest

from bot import server
from bot.db import Database
from bot.server import SlackAuthProbe
from tests.harness import BotHarness


async def test_health_passes_with_database_and_slack(bot: BotHarness) -> None:
    response = await bot.http.get(f"{bot.url}/health")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/health+json")
    body = response.json()
    assert body["status"] == "pass"
    assert body["checks"]["database:connection"][0]["status"] == "pass"
    slack = body["checks"]["slack:auth"][0]
    assert slack["status"] == "pass" and slack["componentId"] == "T0TEST"


async def test_slack_auth_is_cached_for_a_minute(bot: BotHarness) -> None:
    before = len(bot.fake.calls_to("auth.test"))
    for _ in range(5):
        assert (await bot.http.get(f"{bot.url}/health")).status_code == 200
    assert len(bot.fake.calls_to("auth.test")) == before + 1


async def test_a_refused_token_fails_health(bot: BotHarness) -> None:
    bot.fake.fail("auth.test", "token_revoked")
    response = await bot.http.get(f"{bot.url}/health")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "fail"
    assert "token_revoked" in body["checks"]["slack:auth"][0]["output"]


async def test_slack_unreachable_warns_but_the_bot_stays_healthy(bot: BotHarness) -> None:
    bot.fake.server_error("auth.test", status=502)
    response = await bot.http.get(f"{bot.url}/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "warn"
    assert body["checks"]["slack:auth"][0]["status"] == "warn"
    assert body["checks"]["database:connection"][0]["status"] == "pass"


async def test_the_cache_expires(bot: BotHarness) -> None:
    assert bot.deps.slack_client is not None
    bot.deps.slack_auth = SlackAuthProbe(bot.deps.slack_client, clock=bot.deps.clock, ttl=0.0)
    await bot.http.get(f"{bot.url}/health")
    bot.fake.fail("auth.test", "invalid_auth")
    assert (await bot.http.get(f"{bot.url}/health")).status_code == 503
    assert (await bot.http.get(f"{bot.url}/health")).status_code == 200


async def test_a_database_that_never_answers_fails_health_at_once(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A PostgreSQL that accepts connections and never answers held /health for minutes."""
    monkeypatch.setattr(server, "DB_PING_TIMEOUT", 0.5)
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)  # read nothing, answer nothing

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    healthy_db = bot.deps.db
    bot.deps.db = Database(f"postgresql+psycopg://bot:pw@127.0.0.1:{port}/bot")
    try:
        response = await asyncio.wait_for(bot.http.get(f"{bot.url}/health"), 10)
    finally:
        await bot.deps.db.dispose()
        bot.deps.db = healthy_db
        for writer in accepted:
            writer.close()
        listener.close()
    assert accepted, "the probe never reached the silent server"
    assert response.status_code == 503
    check = response.json()["checks"]["database:connection"][0]
    assert check == {"status": "fail", "output": "no answer within 0.5 s", "time": check["time"]}


async def test_a_hung_database_fails_health_at_once_even_through_the_checks_that_read_it(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The escalation timers check reads the database too: with no bound of its own it held /health
    (and the load balancer's probe) for as long as the database stayed silent."""
    monkeypatch.setattr(server, "DB_PING_TIMEOUT", 0.5)
    monkeypatch.setattr(server, "PROBE_TIMEOUT", 0.5, raising=False)
    accepted: list[asyncio.StreamWriter] = []

    async def silent(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(writer)

    listener = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = listener.sockets[0].getsockname()[1]
    escalator = bot.deps.escalator
    assert escalator is not None
    healthy_db = bot.deps.db
    hung = Database(f"postgresql+psycopg://bot:pw@127.0.0.1:{port}/bot")
    bot.deps.db = escalator.rt.db = hung
    started = asyncio.get_running_loop().time()
    try:
        response = await asyncio.wait_for(bot.http.get(f"{bot.url}/health"), 10)
    finally:
        await hung.dispose()
        bot.deps.db = escalator.rt.db = healthy_db
        for writer in accepted:
            writer.close()
        listener.close()
    assert asyncio.get_running_loop().time() - started < 3  # side by side: one timeout, not one per check
    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database:connection"][0]["output"] == "no answer within 0.5 s"
    assert checks["escalation:timers"][0]["status"] == "fail"
    assert checks["escalation:timers"][0]["output"] == "no answer within 0.5 s"
    assert checks["slack:auth"][0]["status"] == "pass"
