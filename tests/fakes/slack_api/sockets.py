"""Socket Mode: apps.connections.open and the WebSocket that carries envelopes to the bot."""

from __future__ import annotations

import json
from typing import Any

from aiohttp import WSMsgType, web

from tests.fakes.slack_api.base import SlackBase


class SocketMode(SlackBase):
    """Slack's side of a Socket Mode connection."""

    async def _handle_socket(self, request: web.Request) -> web.WebSocketResponse:
        """Slack's Socket Mode side: hello, then envelopes out and acks (by envelope_id) in."""
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.sockets.append(ws)
        await ws.send_json({"type": "hello", "num_connections": len(self.sockets), "debug_info": {}})
        async for frame in ws:
            if frame.type == WSMsgType.TEXT:
                ack = json.loads(frame.data)
                self.socket_acks[str(ack.get("envelope_id"))] = ack
        self.sockets.remove(ws)
        return ws

    async def socket_send(self, kind: str, payload: dict[str, Any]) -> str:
        """Deliver an envelope (`slash_commands`, `interactive`, `events_api`) to the connected bot."""
        if not self.sockets:
            raise RuntimeError("no Socket Mode connection")
        envelope_id = f"env-{len(self.socket_acks) + len(self.sockets)}-{self._next_ts()}"
        await self.sockets[-1].send_json(
            {"envelope_id": envelope_id, "type": kind, "payload": payload, "accepts_response_payload": True}
        )
        return envelope_id

    def _apps_connections_open(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"url": f"{self.url.removesuffix('/api/').replace('http://', 'ws://')}/socket"}
