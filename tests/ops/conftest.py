"""The ops flows with a real database, real HTTP to local platform fakes, and in-memory ports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
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
from bot.ops.plans import Plan, Report, Step
from bot.ops.runtime import OpsRuntime
from bot.platforms.registry import Platforms
from bot.settings import Settings
from tests.fakes.railway import FakeRailway
from tests.fakes.webhook import FakeServer
from tests.platforms.helpers import FakeTimer, client_for


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
            platforms=Platforms({"gateway": client_for("railway", railway, http)}),
            timer=timer,
            health_interval=5.0,
        )
        deps.ops_directory = directory
        yield World(deps, railway, health, directory, timer, Progress(), clock)
    await railway.stop()
    await health.stop()
    assert not railway.violations, railway.violations
