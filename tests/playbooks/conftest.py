"""Playbooks through the real app and the fake Slack: a bot with real health and deploy endpoints, and
what tests read back from its progress message."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from bot.deps import Deps
from bot.incidents.models import Incident
from bot.playbooks import runs
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack, Message
from tests.harness import BotHarness, start_bot

# --- fixtures ------------------------------------------------------------------------------------


@pytest.fixture
async def health_server() -> AsyncIterator[str]:
    """Two real health endpoints on localhost: gateway is up, api is down because of its database."""

    async def gateway(_: web.Request) -> web.Response:
        return web.json_response({"status": "UP"})

    async def api(_: web.Request) -> web.Response:
        return web.json_response(
            {"status": "DOWN", "components": {"db": {"status": "DOWN", "details": {"error": "timeout"}}}}, status=503
        )

    async def deploy(request: web.Request) -> web.Response:
        """The generic deploy webhook (bot/platforms/webhook.py) for gateway: two deployments."""
        body = await request.json()
        live = {"id": "dep-2", "status": "success", "created_at": "2026-11-20T08:00:00Z", "can_rollback": True}
        older = {"id": "dep-1", "status": "success", "created_at": "2026-11-19T08:00:00Z", "can_rollback": True}
        if body["action"] == "current":
            return web.json_response({"deployment": live})
        if body["action"] == "list":
            return web.json_response({"deployments": [live, older]})
        return web.json_response({"error": f"not in this test: {body['action']}"}, status=400)

    app = web.Application()
    app.router.add_post("/deploy", deploy)
    app.router.add_get("/gateway/health", gateway)
    app.router.add_get("/api/health", api)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    yield f"http://127.0.0.1:{port}"
    await runner.cleanup()


@pytest.fixture
def bot_config(health_server: str) -> dict[str, Any]:
    return {
        "services": {
            "gateway": {
                "health_url": f"{health_server}/gateway/health",
                "timeout": "2s",
                "platform": "webhook",
                "webhook": {"url": f"{health_server}/deploy"},
            },
            "api": {"health_url": f"{health_server}/api/health", "timeout": "2s"},
        },
        "permissions": {"restart": ["U0LEAD"], "rollback": ["U0LEAD"]},
    }


Customize = Callable[[Deps], None]


@pytest.fixture
async def start(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, bot_config: dict[str, Any]
) -> AsyncIterator[Callable[..., Awaitable[BotHarness]]]:
    """A bot whose deps a test adjusts (fake ops/escalation services) before it starts."""
    stops = []

    async def _start(customize: Customize | None = None) -> BotHarness:
        settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=bot_config)
        harness, stop = await start_bot(fake=fake_slack, settings=settings, customize=customize)
        stops.append(stop)
        return harness

    yield _start
    for stop in stops:
        await stop()


# --- helpers -------------------------------------------------------------------------------------


def progress_messages(bot: BotHarness, incident: Incident) -> list[Message]:
    assert incident.channel_id
    return [
        m
        for m in bot.fake.messages(incident.channel_id)
        if m.blocks and m.blocks[0].get("type") == "header" and "Playbook" in m.blocks[0]["text"]["text"]
    ]


def progress_message(bot: BotHarness, incident: Incident) -> Message:
    messages = progress_messages(bot, incident)
    assert len(messages) == 1, f"expected one progress message, got {len(messages)}"
    return messages[0]


def buttons(message: Message) -> dict[str, dict[str, Any]]:
    return {e["action_id"]: e for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"]}


def text_of(message: Message) -> str:
    parts = []
    for block in message.blocks or []:
        if isinstance(block.get("text"), dict):
            parts.append(block["text"]["text"])
        parts.extend(e["text"] for e in block.get("elements") or [] if isinstance(e.get("text"), str))
    return "\n".join(parts)


async def click(bot: BotHarness, incident: Incident, action_id: str, *, user: str, settle: bool = True) -> None:
    message = progress_message(bot, incident)
    value = buttons(message)[action_id]["value"]
    await bot.click(action_id, value, user=user, channel=incident.channel_id, message_ts=message.ts, settle=settle)


async def step_events(bot: BotHarness, number: int) -> list[Any]:
    return [e for e in await bot.timeline(number) if e.kind == "playbook_step"]


async def current_states(bot: BotHarness, number: int) -> dict[str, Any]:
    async with bot.deps.db.session() as session:
        run = await runs.current_run(session, incident_id=number)
        assert run is not None and run.id is not None
        return {s.step_id: s for s in await runs.step_states(session, run_id=run.id)}
