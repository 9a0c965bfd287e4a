"""The ops flows with a real database, real HTTP to local platform fakes, and in-memory ports; for the Slack
tests (/status, /restart, /rollback), the whole stack behind the real app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.db import Database
from bot.deps import Deps
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.ops import service as audit
from bot.ops.models import AuditLog
from bot.ops.plans import Plan, Report, Step
from bot.ops.runtime import OpsRuntime
from bot.platforms.registry import Platforms
from bot.settings import Settings
from tests.conftest import make_settings
from tests.fakes.kubernetes import FakeKubernetes
from tests.fakes.railway import FakeRailway
from tests.fakes.slack_api import FakeSlack
from tests.fakes.vercel import FakeVercel
from tests.fakes.webhook import SECRET, FakeServer, FakeWebhook
from tests.harness import BotHarness, start_bot
from tests.platforms.helpers import FakeTimer, client_for, service_section


class HealthEndpoint(FakeServer):
    """One /health whose answer a test sets."""

    def __init__(self) -> None:
        super().__init__()
        self.status = 200
        self.body: Any = {"status": "UP"}
        self.hits = 0
        self.app.router.add_get("/health", self._health)

    async def _health(self, request: web.Request) -> web.Response:
        self.hits += 1
        return web.json_response(self.body, status=self.status)


class Directory:
    def __init__(self, groups: dict[str, list[str]] | None = None, handles: dict[str, str] | None = None) -> None:
        self.groups = groups or {}
        self.handles = handles or {}
        self.broken = False
        self.lookups: list[str] = []

    async def group_members(self, *, group_id: str) -> list[str]:
        self.lookups.append(group_id)
        if self.broken:
            raise ChatError("Slack is unavailable", step="usergroups.users.list", code="fatal_error")
        if group_id not in self.groups:
            raise ChatError(f"no user group {group_id}", code="no_such_subteam")
        return self.groups[group_id]

    async def lookup_user(self, *, handle: str) -> str | None:
        return self.handles.get(handle.lstrip("@"))


@dataclass
class Progress:
    steps: list[Step] = field(default_factory=list)
    reports: list[Report] = field(default_factory=list)

    async def progress(self, *, plan: Plan, step: Step) -> None:
        self.steps.append(step)

    async def finished(self, *, plan: Plan, report: Report) -> None:
        self.reports.append(report)

    @property
    def phases(self) -> list[str]:
        out: list[str] = []
        for step in self.steps:
            if not out or out[-1] != step.phase:
                out.append(step.phase)
        return out


@dataclass
class World:
    deps: Deps
    railway: FakeRailway
    health: HealthEndpoint
    directory: Directory
    timer: FakeTimer
    progress: Progress
    clock: FakeClock

    async def incident(self) -> int:
        async with self.deps.db.session() as session:
            incident = Incident(title="Gateway down", declared_by="U0ALICE", declared_at=self.clock.now())
            session.add(incident)
            await session.commit()
            await session.refresh(incident)
            assert incident.id is not None
            return incident.id


@pytest.fixture
async def world(db: Database) -> AsyncIterator[World]:
    railway = FakeRailway()
    health = HealthEndpoint()
    await railway.start()
    await health.start()
    railway.seed(["v1", "v2", "v3"], statuses=["REMOVED", "REMOVED", "SUCCESS"])
    config = BotConfig.model_validate(
        {
            "services": {
                "gateway": {
                    "health_url": f"{health.url}/health",
                    "timeout": "2s",
                    "deploy_timeout": "5m",
                    "platform": "railway",
                    "railway": {"project_id": "prj-1", "service_id": "svc-1", "environment_id": "env-1"},
                },
                "docs": {"health_url": f"{health.url}/health"},
            },
            "permissions": {"restart": ["S0ONCALL", "U0LEAD"], "rollback": ["U0LEAD", "@cto"]},
        }
    )
    settings = Settings.load(_env_file=None, config=config, database_url=db.url)
    clock = FakeClock()
    timer = FakeTimer()
    async with httpx.AsyncClient() as http:
        deps = Deps(settings=settings, db=db, clock=clock, http=http)
        directory = Directory(groups={"S0ONCALL": ["U0ALICE", "U0BOB"]}, handles={"cto": "U0CTO"})
        deps.ops = OpsRuntime(
            platforms=Platforms({"gateway": client_for("railway", railway, http, timer=timer, clock=clock)}),
            timer=timer,
            health_interval=5.0,
        )
        deps.ops_directory = directory
        yield World(deps, railway, health, directory, timer, Progress(), clock)
    await railway.stop()
    await health.stop()
    assert not railway.violations, railway.violations


# --- the whole stack for the Slack tests: the bot, every platform fake, many health endpoints ---------

# Generous: the health server shares the loop (and the CPU) with the bot and its fakes; 0.5 s
# stalled out once in a full run and 1.5 s on a machine whose cores were busy with other work.
HEALTH_TIMEOUT = 3.0


@dataclass
class Stack:
    bot: BotHarness
    railway: FakeRailway
    vercel: FakeVercel
    k8s: FakeKubernetes
    webhook: FakeWebhook
    health: SlowHealth
    timer: FakeTimer

    @property
    def fake(self) -> FakeSlack:
        return self.bot.fake

    async def audit(self) -> list[AuditLog]:
        async with self.bot.deps.db.session() as session:
            return list(reversed(await audit.entries(session)))

    def last_response(self) -> dict[str, Any]:
        assert self.fake.responses, "the bot answered nothing"
        return self.fake.responses[-1]

    def progress(self, channel: str) -> list[Any]:
        """The bot's restart/rollback progress messages in a channel (not the ephemeral answers)."""
        return [
            m
            for m in self.fake.messages(channel)
            if m.ephemeral_to is None and (m.text or "").startswith(("Restart ", "Redeploy ", "Roll back "))
        ]

    def raw(self) -> str:
        """The last response_url answer, fields and buttons included."""
        return str(self.last_response())

    def button_value(self, action_id: str) -> str:
        for response in reversed(self.fake.responses):
            for block in response.get("blocks") or []:
                for element in block.get("elements") or []:
                    if element.get("action_id") == action_id:
                        return str(element["value"])
        raise AssertionError(f"no {action_id} button in {self.bot.replies()}")


class SlowHealth(HealthEndpoint):
    """Many services' /health on one server, one hanging and one failing; those named in `behind_login`
    answer as a sign-in proxy does (a redirect to its login page), which says nothing of their health."""

    def __init__(self) -> None:
        super().__init__()
        from aiohttp import web

        self.behind_login: set[str] = set()

        async def named(request: web.Request) -> web.Response:
            name = request.match_info["name"]
            if name in self.behind_login:
                raise web.HTTPFound("/sso/login")
            if name == "search":
                await self._release.wait()
            if name == "billing":
                body = {"status": "error", "error": {"postgres": {"status": "down", "message": "too many clients"}}}
                return web.json_response(body, status=503)
            return web.json_response({"status": "pass"})

        async def login(request: web.Request) -> web.Response:
            return web.Response(text="<!doctype html><html><body>Sign in</body></html>", content_type="text/html")

        self.app.router.add_get("/svc/{name}/health", named)
        self.app.router.add_get("/sso/login", login)


@pytest.fixture
async def stack(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Stack]:
    railway, vercel, k8s, webhook, health = FakeRailway(), FakeVercel(), FakeKubernetes(), FakeWebhook(), SlowHealth()
    for server in (railway, vercel, k8s, webhook, health):
        await server.start()
    railway.seed(["v1", "v2", "v3"])
    vercel.seed(["v1", "v2", "v3"])
    k8s.seed(["v1", "v2", "v3"])
    webhook.seed(["v1", "v2", "v3"])
    monkeypatch.setenv("TEST_K8S_TOKEN", k8s.token)
    monkeypatch.setenv("DEPLOY_WEBHOOK_SECRET", SECRET)
    fake_slack.add_usergroup("S0ONCALL", "oncall", ["U0ALICE", "U0BOB"])

    def svc(name: str) -> dict[str, Any]:
        return {"health_url": f"{health.url}/svc/{name}/health", "timeout": f"{int(HEALTH_TIMEOUT * 1000)}ms"}

    services: dict[str, Any] = {
        "gateway": {**svc("gateway"), **service_section("railway", railway)},
        "web": {**svc("web"), **service_section("vercel", vercel)},
        "api": {**svc("api"), **service_section("kubernetes", k8s)},
        "billing": {**svc("billing"), **service_section("webhook", webhook)},
        "search": svc("search"),
        "jobs": service_section("railway", railway),  # deployable, with no health_url: nothing to re-check
    }
    for n in range(15):
        services[f"worker-{n:02d}"] = svc(f"worker-{n:02d}")
    config = {
        "services": services,
        "permissions": {"restart": ["S0ONCALL", "U0LEAD"], "rollback": ["U0LEAD", "U0CTO"]},
    }
    settings = make_settings(
        fake=fake_slack,
        database_url=database_url,
        tmp_path=tmp_path,
        config=config,
        railway_token=railway.account_token,
        railway_api_url=railway.api_url,
        vercel_token=vercel.token,
        vercel_team_id=vercel.team_id,
        vercel_api_url=vercel.url,
    )
    timer = FakeTimer()

    def customize(deps: Any) -> None:
        deps.ops.timer = timer

    harness, stop = await start_bot(fake=fake_slack, settings=settings, customize=customize)
    try:
        yield Stack(harness, railway, vercel, k8s, webhook, health, timer)
    finally:
        for server in (railway, vercel, k8s, webhook, health):
            await server.stop()
        await stop()
    for server in (railway, vercel, k8s, webhook):
        assert not server.violations, f"{server.platform}: {server.violations}"


async def incident_channel(stack: Stack) -> str:
    incident = await stack.bot.declare("P1 Gateway is down")
    assert incident.channel_id
    return incident.channel_id
