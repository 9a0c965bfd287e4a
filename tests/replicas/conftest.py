"""Two bot instances on one PostgreSQL database and one Slack workspace, as a scaled-out deploy runs.

Both harnesses live on the test's event loop. Each would install its own task factory, and the
first would then also track the second's long-lived start-up tasks; so once both are up, one
shared tracker replaces theirs and both harnesses settle on it.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, TaskTracker, start_bot

ON_POSTGRES = os.environ.get("TEST_DATABASE") == "postgresql"
REPLICAS_ONLY = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        not ON_POSTGRES,
        reason="replica races need two connections writing at once; SQLite serialises writers, so a pass "
        "there "
        "proves nothing. Run with TEST_DATABASE=postgresql",
    ),
]


@dataclass
class Replicas:
    a: BotHarness
    b: BotHarness
    fake: FakeSlack

    async def settle(self) -> None:
        await self.a.settle()  # the shared tracker: waits for both

    async def both(self, body: str, headers: dict[str, str]) -> list[Any]:
        """The same bytes to both replicas at the same moment (a retry that landed on the other pod)."""
        responses = await asyncio.gather(self.a.post(body, headers), self.b.post(body, headers))
        await self.settle()
        return list(responses)


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {}


@pytest.fixture
async def replicas(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any]
) -> AsyncIterator[Replicas]:
    settings_a = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config
    )
    settings_b = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config
    )
    a, stop_a = await start_bot(fake=fake_slack, settings=settings_a)
    try:
        b, stop_b = await start_bot(fake=fake_slack, settings=settings_b)
        shared = TaskTracker(asyncio.get_running_loop())
        b.tracker.uninstall()
        a.tracker.uninstall()
        shared.install()
        a.tracker = b.tracker = shared
        try:
            yield Replicas(a=a, b=b, fake=fake_slack)
        finally:
            await shared.settle()
            shared.uninstall()
            await stop_b()
    finally:
        await stop_a()
