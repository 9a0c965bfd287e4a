"""Escalation through the real app and the fake Slack: an app starter (several instances may share the
database) and what tests read back from Slack. The FakeClock is the parent conftest's (T0).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.escalation.flows import Escalator
from bot.escalation.scheduler import EscalationScheduler
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack, Message
from tests.harness import BotHarness, start_bot

LEVELS = [
    {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
    {"name": "Team lead", "after": "15m", "notify": ["U0LEAD"]},
    {"name": "CTO", "after": "30m", "notify": ["U0CTO"]},
]
CONFIG: dict[str, Any] = {
    "oncall": {
        "timezone": "Europe/London",
        "rotation": {"period": "weekly", "handoff": "monday 09:00", "users": ["U0ALICE", "U0BOB", "U0CAROL"]},
    },
    "escalation": {"levels": LEVELS, "severity": {"P3": {"levels": 1}, "P4": {"levels": 1}}},
}

Starter = Callable[..., Awaitable[BotHarness]]


@pytest.fixture
async def start(fake_slack: FakeSlack, database_url: str, tmp_path: Path, clock: FakeClock) -> AsyncIterator[Starter]:
    """Start an app instance (several may share the database); all are stopped at the end."""
    running: list[tuple[BotHarness, Callable[[], Awaitable[None]]]] = []

    async def starter(config: dict[str, Any] | None = None, *, clock_: Any = None) -> BotHarness:
        settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config or CONFIG)
        harness, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock_ or clock)
        running.append((harness, stop))
        return harness

    starter.running = running  # type: ignore[attr-defined]
    yield starter
    for _, stop in reversed(running):
        await stop()


async def stop_instance(start: Starter, harness: BotHarness) -> None:
    running = start.running  # type: ignore[attr-defined]
    for entry in list(running):
        if entry[0] is harness:
            running.remove(entry)
            await entry[1]()


def scheduler(bot: BotHarness) -> EscalationScheduler:
    found = bot.deps.scheduler
    assert found is not None
    return found


def escalator(bot: BotHarness) -> Escalator:
    found = bot.deps.escalator
    assert found is not None
    return found


async def tick(bot: BotHarness, clock: FakeClock, delta: timedelta) -> None:
    """Move time and run what the wake-up job would run."""
    clock.advance(delta)
    await scheduler(bot).run()
    await bot.settle()


def page_dms(fake: FakeSlack, user: str) -> list[Message]:
    return [m for m in fake.dms(user) if any(b.get("type") == "actions" for b in m.blocks or [])]


def page_lines(fake: FakeSlack, channel_id: str) -> list[str]:
    return [m.text for m in fake.messages(channel_id) if m.text.startswith("📟")]


def button_values(message: Message) -> list[tuple[str, str]]:
    return [
        (e["action_id"], e["value"]) for b in message.blocks or [] if b.get("type") == "actions" for e in b["elements"]
    ]
