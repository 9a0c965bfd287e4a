"""/status through the real app: signed requests, the fake Slack, many health endpoints (one hanging, one
failing)."""

from __future__ import annotations

import logging
import re
import time
from pathlib import Path

import pytest
from aiohttp import web

from bot import logs
from bot.health.checker import MAX_BODY
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import running_bot
from tests.ops.conftest import HEALTH_TIMEOUT, HealthEndpoint, Stack, incident_channel


async def test_status_of_many_endpoints_with_one_hanging_and_one_failing(stack: Stack) -> None:
    started = time.perf_counter()
    response = await stack.bot.command("", command="/status", user="U0CAROL")
    took = time.perf_counter() - started

    assert response.status_code == 200
    assert took < 2 * HEALTH_TIMEOUT + 1.0, f"/status took {took:.2f}s"
    reply = stack.last_response()
    assert reply.get("response_type") in (None, "ephemeral")
    text = stack.bot.last_reply()
    assert "18 healthy · 1 unknown · 1 failing · 1 unreachable" in text
    lines = [line for line in text.splitlines()[2:] if line.startswith(("🟢 *", "🔴 *", "⚫ *"))]
    assert lines[0].startswith("⚫ *search* unreachable") and f"no answer within {HEALTH_TIMEOUT:g} s" in lines[0]
    assert lines[1].startswith("🔴 *billing* failing") and "failing: postgres (too many clients)" in lines[1]
    assert len(lines) == 20


async def test_status_in_an_incident_channel_is_posted_and_on_the_timeline(stack: Stack) -> None:
    channel = await incident_channel(stack)
    await stack.bot.command("", command="/status", user="U0BOB", channel=channel)

    assert stack.last_response()["response_type"] == "in_channel"
    events = [e for e in await stack.bot.timeline(1) if e.kind == "health"]
    assert len(events) == 1 and events[0].actor == "U0BOB"
    assert "1 failing (billing: postgres)" in events[0].text


async def test_status_of_one_service_shows_dependencies_and_deployments(stack: Stack) -> None:
    await stack.bot.command("billing", command="/status")
    text = stack.bot.last_reply()

    assert "🔴 postgres failing · too many clients" in text
    assert "*Recent deployments on deploy webhook*" in text
    assert text.count("`hook-") == 3 and "· *live*" in text


async def test_status_of_an_unknown_service_suggests_one(stack: Stack) -> None:
    await stack.bot.command("gatewy", command="/status")
    assert "Did you mean: `/status gateway`" in stack.bot.last_reply()


@pytest.mark.parametrize(
    ("status", "reason", "shown"),
    [
        (200, "HTTP 200", '→ HTTP 200"'),
        (200, "HTTP 200, unrecognised status 'green'", "→ HTTP 200 · unrecognised status 'green'"),
        (503, "HTTP 503 (expected 200)", "→ HTTP 503 · (expected 200)"),
        (200, "status DOWN", "→ HTTP 200 · status DOWN"),
    ],
)
def test_status_of_one_service_says_the_http_status_once(status: int, reason: str, shown: str) -> None:
    """/status gateway showed "HTTP 200 · HTTP 200"."""
    import json
    from datetime import UTC, datetime, timedelta

    from bot.health.checker import HealthResult
    from bot.health.classify import HealthState
    from bot.ops.status import StatusReport
    from bot.slack.adapters.ops import status_blocks

    result = HealthResult(
        "gateway", HealthState.HEALTHY, "https://gw/health", http_status=status, latency=timedelta(0), reason=reason
    )
    report = StatusReport([result], HealthState.HEALTHY, datetime.now(UTC), timedelta(0), service="gateway")
    rendered = json.dumps(status_blocks(report), ensure_ascii=False)
    assert shown in rendered and rendered.count(f"HTTP {status}") == 1


async def test_status_never_shows_the_credentials_in_a_health_url(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """A health_url with basic auth or a token parameter: /status of the service (posted to the whole
    channel inside an incident) must name the endpoint without its password or token, and so must the logs."""
    caplog.set_level(logging.INFO)
    async with HealthEndpoint() as health:
        url = health.url.replace("http://", "http://monitor:s3cr3t-pass@") + "/health?token=tok-abc123&full=1"
        config = {"services": {"gateway": {"health_url": url}}}
        settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
        async with running_bot(fake=fake_slack, settings=settings) as bot:
            health.status = 503
            await bot.command("gateway", command="/status")
            shown = str(fake_slack.responses[-1])

    assert health.hits == 1 and "failing" in shown and "/health" in shown  # checked, and says where
    assert "s3cr3t-pass" not in shown and "tok-abc123" not in shown, shown
    logged = "\n".join(logs.JsonFormatter().format(record) for record in caplog.records)
    assert "/health" in logged and "s3cr3t-pass" not in logged, logged


async def test_status_of_one_service_is_not_held_up_by_a_hanging_platform(stack: Stack) -> None:
    """Railway slow during an outage: /status gateway waited for the platform's full request timeout
    (15 s, more for Vercel's chained lookups) before showing a health check that took milliseconds."""
    stack.railway.hang_next(10)  # answers after 10 s (the request timeout is 15 s)
    await stack.bot.command("gateway", command="/status")

    text = stack.bot.last_reply()
    assert "*gateway* healthy" in text, text
    assert "Railway did not list its deployments within 5 s" in text, text
    took = re.search(r"checked in ([0-9.]+) s", text)
    assert took is not None and float(took[1]) < 8, text


class BehindALogin(HealthEndpoint):
    """/health behind an authenticating proxy: a redirect to its sign-in page, which answers 200 HTML."""

    def __init__(self) -> None:
        super().__init__()

        async def guarded(request: web.Request) -> web.Response:
            raise web.HTTPFound("/sso/login?rd=/health")

        async def login(request: web.Request) -> web.Response:
            return web.Response(text="<!doctype html><html><body>Sign in</body></html>", content_type="text/html")

        self.app.router.add_get("/guarded/health", guarded)
        self.app.router.add_get("/sso/login", login)


async def test_a_health_url_redirected_to_a_login_page_is_not_reported_healthy(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """The proxy answers for the service: its sign-in page says nothing about whether the service is up."""
    async with BehindALogin() as health:
        services = {
            "gateway": {"health_url": f"{health.url}/guarded/health"},
            "docs": {"health_url": health.url + "/health"},
        }
        settings = make_settings(
            fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={"services": services}
        )
        async with running_bot(fake=fake_slack, settings=settings) as bot:
            await bot.command("", command="/status")
            text = bot.last_reply()

    assert "1 healthy · 1 unknown" in text, text
    line = next(line for line in text.splitlines() if "*gateway*" in line)
    assert "unknown" in line and "redirected to" in line and "/sso/login" in line and "login page" in line, line


async def test_a_health_answer_too_big_to_read_is_degraded_not_healthy(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Over 256 KB the body was cut before parsing, so a `"status":"warn"` after the details was missed and
    the service shown healthy from the HTTP status alone."""
    async with HealthEndpoint() as health:
        health.body = {"details": {"cache": "x" * MAX_BODY}, "status": "warn"}
        config = {"services": {"gateway": {"health_url": health.url + "/health"}}}
        settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config)
        async with running_bot(fake=fake_slack, settings=settings) as bot:
            await bot.command("", command="/status")
            text = bot.last_reply()

    line = next(line for line in text.splitlines() if "*gateway*" in line)
    assert "degraded" in line and "over 256 KB, not read" in line, text
