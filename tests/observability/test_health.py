"""GET /health: database, scheduler and Slack auth, as application/health+json."""

from __future__ import annotations

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
