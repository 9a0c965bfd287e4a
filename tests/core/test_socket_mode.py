"""Socket Mode, the manifest's default: the real runner connects, takes a slash command, and acks it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx

from bot.runner import serve
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import free_port


async def _until(predicate: object, what: str, within: float = 15.0) -> None:
    deadline = asyncio.get_running_loop().time() + within
    while not predicate():  # type: ignore[operator]
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_socket_mode_serves_slash_commands_and_keeps_health(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    port = free_port()
    settings = make_settings(
        fake=fake_slack,
        database_url=database_url,
        tmp_path=tmp_path,
        slack_signing_secret=None,
        slack_app_token=fake_slack.app_token,
        port=port,
        host="127.0.0.1",
    )
    assert settings.socket_mode
    ready, stop = asyncio.Event(), asyncio.Event()
    server = asyncio.create_task(serve(settings, ready=ready, stop=stop))
    try:
        await asyncio.wait_for(ready.wait(), timeout=30)
        await _until(lambda: fake_slack.sockets, "the Socket Mode connection")
        assert [c.method for c in fake_slack.calls_to("apps.connections.open")] == ["apps.connections.open"]

        envelope = await fake_slack.socket_send(
            "slash_commands",
            {
                "token": "unused",
                "team_id": fake_slack.team_id,
                "channel_id": "C0GENERAL",
                "channel_name": "general",
                "user_id": "U0ALICE",
                "user_name": "alice",
                "command": "/incident",
                "text": "declare P1 Checkout over the socket",
                "api_app_id": "A0TEST",
                "response_url": fake_slack.response_url("socket", channel_id="C0GENERAL", user_id="U0ALICE"),
                "trigger_id": "trig-socket",
            },
        )
        await _until(lambda: envelope in fake_slack.socket_acks, "the ack of the envelope")
        await _until(lambda: fake_slack.channel_by_name("inc-1-checkout-over-the-socket"), "the incident channel")
        await _until(lambda: any("INC-1" in (r.get("text") or "") for r in fake_slack.responses), "the reply")

        async with httpx.AsyncClient() as client:
            health = await client.get(f"http://127.0.0.1:{port}/health")
            events = await client.post(f"http://127.0.0.1:{port}/slack/events", content=b"{}")
        assert health.status_code == 200 and health.json()["status"] in {"pass", "warn"}
        assert events.status_code == 404  # Slack traffic comes over the socket, not HTTP
    finally:
        stop.set()
        await asyncio.wait_for(server, timeout=30)
    assert not fake_slack.sockets  # closed on shutdown
