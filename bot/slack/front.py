"""The front door: slash commands and button clicks are acknowledged before Bolt runs.

Bolt answers Slack only once a listener has called `ack()`, after the whole middleware chain, and
it notices the call by polling every 10 ms. One command at a time that costs ~11 ms; fifty at
once queue behind one another (and behind the work earlier commands do after their ack) on the
one event loop, and past 3 s Slack tells the user the command failed although it ran.

The ack of a slash command or a click carries nothing the bot needs to say there: listeners
answer through `response_url`. So the front door checks the signature, answers at once and hands
the request to Bolt right after. When a listener does put a message in its ack (a usage error),
the door posts it to the request's `response_url`, where Slack shows it the same way.

Everything else goes through Bolt unchanged: a form's ack carries its validation errors, and an
event's delivery is claimed in the database before its ack, a channel message stored with its
claim (`listeners/replay.py`): Slack retries an event only while it gets no 200.

Only Bolt's public request/response API is used: an `AsyncBoltRequest` built from the raw body and
headers (or a Socket Mode payload) goes to `AsyncApp.async_dispatch`, which answers a `BoltResponse`.
Easy to miss: a listener's `ack()` still runs and still fills that response after the door answered
Slack; the door reads it (`ack_message`) instead of sending it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import parse_qs

import httpx
from slack_bolt.adapter.socket_mode.aiohttp import AsyncSocketModeHandler
from slack_bolt.async_app import AsyncApp
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse
from slack_sdk.signature import SignatureVerifier
from slack_sdk.socket_mode.aiohttp import SocketModeClient
from slack_sdk.socket_mode.request import SocketModeRequest
from slack_sdk.socket_mode.response import SocketModeResponse

from bot.deps import Deps

log = logging.getLogger(__name__)

ACKED_EARLY = "acked_early"  # in the Bolt request's context: the door answered Slack already


def early_kind(body: dict[str, Any]) -> str | None:
    """ "command" or "block_actions" when the door may ack this request itself; None otherwise."""
    if body.get("command") and "payload" not in body:
        return "command"
    if body.get("type") == "block_actions":
        return "block_actions"
    return None


class FrontDoor:
    """Acks early, then dispatches to Bolt in the background and forwards what its ack said."""

    # Bolt's work for a request waits this long first: in a burst, the requests that arrived just
    # after it are acked before it takes the event loop (the loop runs ready work in order).
    ACK_FIRST = 0.005

    def __init__(self, app: AsyncApp, deps: Deps, *, signing_secret: str | None) -> None:
        self.app = app
        self.deps = deps
        self.verifier = SignatureVerifier(signing_secret) if signing_secret else None
        self.metrics = deps.metrics

    def authentic(self, raw: bytes, *, timestamp: str, signature: str) -> bool:
        """Slack's signature over the raw body, checked before anything reads the body.

        Whatever the bytes (not UTF-8, a timestamp like `²` that `str.isdigit` accepts but `int` does
        not, an absurd one), the answer is True or False, never an exception.
        """
        if self.verifier is None or not signature or not (timestamp.isascii() and timestamp.isdigit()):
            return False
        if len(timestamp) > 12:
            return False
        try:
            return self.verifier.is_valid(body=raw.decode("utf-8"), timestamp=timestamp, signature=signature)
        except (UnicodeDecodeError, ValueError, OverflowError):
            return False

    def verified(self, body: str, headers: dict[str, Any]) -> bool:
        if self.verifier is None:
            return False
        return self.verifier.is_valid(
            body=body,
            timestamp=_first(headers.get("x-slack-request-timestamp")),
            signature=_first(headers.get("x-slack-signature")),
        )

    def take(self, request: AsyncBoltRequest, *, started: float) -> bool:
        """True when the door answers this request itself (the caller sends an empty 200 now)."""
        body = request.body if isinstance(request.body, dict) else {}
        kind = early_kind(body)
        if kind is None or not self.verified(request.raw_body, request.headers):
            return False  # Bolt answers: its ack carries something, or it refuses the signature
        self.accept(request, kind, started=started)
        return True

    def accept(self, request: AsyncBoltRequest, kind: str, *, started: float) -> None:
        request.context[ACKED_EARLY] = True
        self.metrics.observe_ack(kind, time.perf_counter() - started)
        self.deps.background.spawn(self.dispatch(request, kind), f"handle a Slack {kind}")

    async def through_bolt(self, request: AsyncBoltRequest, *, started: float) -> BoltResponse:
        """A request Bolt answers itself (a form, an event)."""
        return await self.app.async_dispatch(request)

    async def dispatch(self, request: AsyncBoltRequest, kind: str) -> None:
        await asyncio.sleep(self.ACK_FIRST)
        response = await self.app.async_dispatch(request)
        if response.status != 200:
            log.warning("Slack %s answered %s after its early ack: %s", kind, response.status, response.body[:200])
            return
        url = str((request.body or {}).get("response_url") or "")
        message = ack_message(response)
        if kind == "command" and message and url:
            await self.forward(url, message)

    async def forward(self, url: str, message: dict[str, Any]) -> None:
        message.setdefault("response_type", "ephemeral")
        try:
            answer = await self.deps.http.post(url, json=message, timeout=10)
        except httpx.HTTPError as exc:
            log.warning("could not post an ack's message to response_url: %s", type(exc).__name__)
            return
        if answer.status_code != 200:
            log.warning("response_url refused an ack's message: HTTP %s %s", answer.status_code, answer.text[:200])


def ack_message(response: BoltResponse) -> dict[str, Any] | None:
    """What a listener's `ack(...)` said, as a message (Bolt renders text-only acks as plain text)."""
    if not response.body:
        return None
    content_type = (response.headers.get("content-type") or [""])[0]
    if content_type.startswith("application/json"):
        try:
            message = json.loads(response.body)
        except ValueError:
            return {"text": response.body}
        return message if isinstance(message, dict) and message else None
    return {"text": response.body}


def unreadable(text: str, content_type: str) -> str | None:
    """Why a signed body is not one Slack sends, or None.

    Slack sends JSON (events), or a form: a `payload` of JSON (interactions) or plain fields (slash
    commands). Bolt reads some fields by shape before any listener runs, and listeners rely on the
    person: a body of another shape, or from nobody, is answered 400 rather than crashing on the way.
    """
    if content_type == "application/json" or text.startswith("{"):
        encoded: str | None = text
        fields: dict[str, Any] = {}
    else:
        form = parse_qs(text)
        encoded = form["payload"][0] if "payload" in form else None
        fields = {name: values[0] for name, values in form.items()}
    if encoded is not None:
        try:
            fields = json.loads(encoded)
        except (ValueError, RecursionError):
            return "not JSON"
        if not isinstance(fields, dict):
            return "not a JSON object"
    for key, kinds in _SHAPES.items():
        if key in fields and not isinstance(fields[key], kinds):
            return f"not Slack's shape ({key} is {type(fields[key]).__name__})"
    authorizations = fields.get("authorizations")
    if authorizations is not None and not (
        isinstance(authorizations, list) and all(isinstance(a, dict) for a in authorizations)
    ):
        return "not Slack's shape (authorizations)"
    if fields.get("command") and not _named(fields.get("user_id")):
        return "a command from nobody"
    user = fields.get("user")
    if fields.get("type") in _INTERACTIONS and not (isinstance(user, dict) and _named(user.get("id"))):
        return "an interaction from nobody"
    return None


def _named(value: Any) -> bool:
    return isinstance(value, str) and bool(value)


# The fields Bolt reads by shape before any listener runs: what Slack sends (a string where both
# occur, null where Slack sends null, as `enterprise` outside Enterprise Grid).
_SHAPES: dict[str, type | tuple[type, ...]] = {
    "event": dict,
    "view": dict,
    "message": dict,
    "container": dict,
    "previous_message": dict,
    "item": dict,
    "actions": list,
    "user": (dict, str, type(None)),
    "channel": (dict, str, type(None)),
    "team": (dict, str, type(None)),
    "enterprise": (dict, str, type(None)),
}
_INTERACTIONS = {"block_actions", "view_submission", "view_closed", "shortcut", "message_action"}


def _first(value: Any) -> str:
    if isinstance(value, list | tuple):
        return str(value[0]) if value else ""
    return str(value or "")


class SocketModeDoor(AsyncSocketModeHandler):
    """The same door over Socket Mode: the envelope of a command or a click is acked on arrival."""

    def __init__(self, app: AsyncApp, app_token: str, door: FrontDoor) -> None:
        super().__init__(app, app_token)
        self.door = door

    async def handle(self, client: SocketModeClient, req: SocketModeRequest) -> None:  # type: ignore[override]
        started = time.perf_counter()
        body = req.payload if isinstance(req.payload, dict) else {}
        kind = early_kind(body) if req.type in ("slash_commands", "interactive") else None
        if kind is None:
            await super().handle(client, req)
            return
        await client.send_socket_mode_response(SocketModeResponse(envelope_id=req.envelope_id))
        request = AsyncBoltRequest(mode="socket_mode", body=body, headers=retry_headers(req))
        self.door.accept(request, kind, started=started)


def retry_headers(req: SocketModeRequest) -> dict[str, str | Sequence[str]]:
    """The retry headers Slack sends over HTTP, from a Socket Mode envelope (as Bolt's own handler makes them)."""
    headers: dict[str, str | Sequence[str]] = {}
    if req.retry_attempt is not None:
        headers["x-slack-retry-num"] = str(req.retry_attempt)
    if req.retry_reason is not None:
        headers["x-slack-retry-reason"] = req.retry_reason
    return headers
