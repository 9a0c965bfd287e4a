"""Talking to the bot as Slack does: signed slash commands, button clicks, form submissions, and alerts."""

from __future__ import annotations

import contextlib
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

import httpx
from slack_sdk.signature import SignatureVerifier

from bot.demo.slack_stand_in import SlackStandIn
from bot.demo.slack_workspace import StandInMessage, find_button
from bot.demo.transcript import Transcript
from bot.demo.world import PEOPLE, SECRET, TEAM_ID
from bot.tasks import TaskTracker


class Driver:
    """Signs requests as Slack does and posts them to the bot's /slack/events."""

    def __init__(self, *, bot_url: str, slack: SlackStandIn, transcript: Transcript, watch: TaskTracker) -> None:
        self.bot_url = bot_url
        self.slack = slack
        self.transcript = transcript
        self.watch = watch
        self.http = httpx.AsyncClient(timeout=30)
        self.signer = SignatureVerifier(SECRET)
        self._triggers = itertools.count(1)

    async def close(self) -> None:
        await self.http.aclose()

    async def settle(self) -> None:
        """Wait for the work the last request started; a demo that hangs goes on after 30 s."""
        with contextlib.suppress(TimeoutError):
            await self.watch.settle(within=30.0)

    def _sign(self, body: str, content_type: str) -> dict[str, str]:
        ts = str(int(time.time()))
        signature = self.signer.generate_signature(timestamp=ts, body=body) or ""
        return {"Content-Type": content_type, "X-Slack-Request-Timestamp": ts, "X-Slack-Signature": signature}

    async def _post(self, body: str, content_type: str = "application/x-www-form-urlencoded") -> httpx.Response:
        response = await self.http.post(
            f"{self.bot_url}/slack/events", content=body.encode(), headers=self._sign(body, content_type)
        )
        await self.settle()
        return response

    async def _interact(self, kind: str, user: str, **fields: Any) -> httpx.Response:
        """An interactivity payload (`block_actions`, `view_submission`) from `user`, as Slack posts it."""
        payload = {
            "type": kind,
            "team": {"id": TEAM_ID, "domain": "demo"},
            "user": {"id": user, "username": PEOPLE[user], "name": PEOPLE[user], "team_id": TEAM_ID},
            "api_app_id": "A0DEMO",
            "token": "demo",
            "trigger_id": f"trigger-{next(self._triggers)}",
            **fields,
        }
        return await self._post(urlencode({"payload": json.dumps(payload)}))

    async def command(self, user: str, channel: str, command: str, text: str) -> httpx.Response:
        """Type a slash command (a 404 answer: this build has no such command)."""
        where = f"#{self.slack.name(channel)}"
        self.transcript.say(where, PEOPLE[user], f"{command} {text}".strip())
        fields = {
            "token": "demo",
            "team_id": TEAM_ID,
            "team_domain": "demo",
            "channel_id": channel,
            "channel_name": self.slack.name(channel),
            "user_id": user,
            "user_name": PEOPLE[user],
            "command": command,
            "text": text,
            "api_app_id": "A0DEMO",
            "is_enterprise_install": "false",
            "response_url": self.slack.response_url(channel=channel, user=user),
            "trigger_id": f"trigger-{next(self._triggers)}",
        }
        return await self._post(urlencode(fields))

    async def click(self, user: str, message: StandInMessage, label: str) -> bool:
        """Press the button whose text starts with `label`; False when the message has none."""
        button, block_id = find_button(message, label)
        if button is None:
            return False
        channel = self.slack.channels.get(message.channel)
        where = self.slack.where(channel) if channel else message.channel
        self.transcript.say(where, PEOPLE[user], f"clicks [{button.get('text', {}).get('text', label)}]")
        await self._interact(
            "block_actions",
            user,
            channel={"id": message.channel, "name": self.slack.name(message.channel)},
            container={
                "type": "message",
                "message_ts": message.ts,
                "channel_id": message.channel,
                "is_ephemeral": False,
            },
            message=message.to_api(),
            state={"values": {}},
            response_url=self.slack.response_url(channel=message.channel, user=user, message_ts=message.ts),
            actions=[
                {
                    "action_id": button["action_id"],
                    "block_id": block_id,
                    "type": "button",
                    "value": button.get("value", ""),
                    "text": button.get("text"),
                    "action_ts": f"{time.time():.6f}",
                }
            ],
        )
        return True

    async def submit(self, user: str, view: dict[str, Any]) -> httpx.Response:
        """Submit a form as it was shown (every field keeps its initial value)."""
        values: dict[str, Any] = {}
        for block in view.get("blocks", []):
            if block.get("type") != "input":
                continue
            element = block.get("element", {})
            action_id = element.get("action_id", "value")
            if element.get("type") == "static_select":
                values[block["block_id"]] = {
                    action_id: {"type": "static_select", "selected_option": element.get("initial_option")}
                }
            else:
                values[block["block_id"]] = {
                    action_id: {"type": element.get("type"), "value": element.get("initial_value")}
                }
        title = (view.get("title") or {}).get("text", "the form")
        self.transcript.say("(form)", PEOPLE[user], f"submits “{title}” as filled in")
        return await self._interact(
            "view_submission",
            user,
            view={
                "id": "V0DEMO",
                "type": "modal",
                "callback_id": view.get("callback_id", ""),
                "private_metadata": view.get("private_metadata", ""),
                "blocks": view.get("blocks", []),
                "state": {"values": values},
                "hash": "h",
            },
            response_urls=[],
            is_enterprise_install=False,
        )

    async def alert(self, body: dict[str, Any]) -> httpx.Response:
        response = await self.http.post(f"{self.bot_url}/alerts/alertmanager", json=body)
        await self.settle()
        return response
