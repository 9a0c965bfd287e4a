"""Helpers to post webhooks to the real bot and read what it did."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

from bot.alerts.flows import AlertProcessor, processor_of
from bot.alerts.models import AlertGroup
from tests.fakes.slack_api import Message
from tests.harness import BotHarness

# bot.yml pieces the tests share: critical alerts declare a P1 at once; `api` is a configured service.
AUTO: dict[str, Any] = {"alerts": {"auto_declare": [{"match": {"severity": "critical"}, "severity": "P1"}]}}
API: dict[str, Any] = {"api": {"health_url": "http://127.0.0.1:1/health"}}


async def send(
    bot: BotHarness,
    body: Any,
    *,
    source: str = "alertmanager",
    headers: dict[str, str] | None = None,
    settle: bool = True,
) -> httpx.Response:
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await bot.http.post(
        f"{bot.url}/alerts/{source}",
        content=content,
        headers={"Content-Type": "application/json", "User-Agent": "Alertmanager/0.25.0", **(headers or {})},
    )
    if settle:
        await bot.settle()
    return response


def processor(bot: BotHarness) -> AlertProcessor:
    return processor_of(bot.deps)


def alert_messages(bot: BotHarness, channel: str = "C0ALERTS") -> list[Message]:
    return [m for m in bot.fake.messages(channel) if m.ephemeral_to is None]


def action_ids(message: Message) -> list[str]:
    return [e.get("action_id") for b in message.blocks or [] if b["type"] == "actions" for e in b["elements"]]


def button_value(message: Message, action_id: str) -> str:
    for block in message.blocks or []:
        for element in block.get("elements", []) if block["type"] == "actions" else []:
            if element.get("action_id") == action_id:
                return str(element["value"])
    raise AssertionError(f"no {action_id} button in {message.blocks}")


def rendered(message: Message) -> str:
    """All the text a reader sees in the message."""
    return json.dumps(message.blocks or [], ensure_ascii=False) + message.text


async def groups(bot: BotHarness) -> list[AlertGroup]:
    from sqlmodel import col, select

    async with bot.deps.db.session() as session:
        result = await session.exec(select(AlertGroup).order_by(col(AlertGroup.id)))
        return list(result.all())


async def incident_count(bot: BotHarness) -> int:
    from sqlalchemy import func
    from sqlmodel import select

    from bot.incidents.models import Incident

    async with bot.deps.db.session() as session:
        result = await session.exec(select(func.count()).select_from(Incident))
        return int(result.one())


async def kill_sync_in_slack_call(bot: BotHarness, gate: asyncio.Event, *, drop: bool = False) -> None:
    """A group's sync stopped inside the Slack call `gate` holds, as a kill -9 there stops it: nothing after
    the call runs. `drop`: Slack never acted on the held call (else it did, and only the answer is lost)."""
    for _ in range(200):
        if bot.fake.held:
            break
        await asyncio.sleep(0.02)
    assert bot.fake.held, "the Slack call was never made"
    [sync] = [t for t in bot.deps.background.tasks if t.get_name().startswith("show alert group")]
    sync.cancel()
    if drop:
        bot.fake.drop_held()
    gate.set()
    await asyncio.gather(sync, return_exceptions=True)
