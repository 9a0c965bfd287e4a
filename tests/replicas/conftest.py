"""Two bot instances on one PostgreSQL database and one Slack workspace, as a scaled-out deploy runs.

Both harnesses live on the test's event loop. Each would install its own task factory, and the
first would then also track the second's long-lived start-up tasks; so once both are up, one
shared tracker replaces theirs and both harnesses settle on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.deps import Deps
from tests.conftest import BACKEND, make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, TaskTracker, start_bot

REPLICAS_ONLY = [
    pytest.mark.postgres_only,
    pytest.mark.skipif(
        BACKEND != "postgresql",
        reason="replica races need two connections writing at once; SQLite serialises writers, so a pass "
        "there proves nothing. Run with TEST_DATABASE=postgresql",
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


@asynccontextmanager
async def two_bots(
    fake: FakeSlack,
    database_url: str,
    tmp_path: Path,
    config: dict[str, Any],
    *,
    prepare: Callable[[Deps], None] | None = None,
    **build_kwargs: Any,
) -> AsyncIterator[Replicas]:
    """Two bots on one database, settling on one shared task tracker; `prepare` runs on each once started."""
    made = []
    try:
        for _ in range(2):
            settings = make_settings(fake=fake, database_url=database_url, tmp_path=tmp_path, config=config)
            made.append(await start_bot(fake=fake, settings=settings, **build_kwargs))
            if prepare is not None:
                prepare(made[-1][0].deps)
        (a, _), (b, _) = made
        shared = TaskTracker(asyncio.get_running_loop())
        b.tracker.uninstall()
        a.tracker.uninstall()
        shared.install()
        a.tracker = b.tracker = shared
        try:
            yield Replicas(a=a, b=b, fake=fake)
        finally:
            await shared.settle()
            shared.uninstall()
    finally:
        for _, stop in reversed(made):
            await stop()


@pytest.fixture
async def replicas(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any]
) -> AsyncIterator[Replicas]:
    async with two_bots(fake_slack, database_url, tmp_path, bot_config) as both:
        yield both
