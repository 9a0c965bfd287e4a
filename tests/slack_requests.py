"""Signed HTTP requests exactly as Slack sends them to the bot's ``/slack/events``.

Why: Bolt verifies the signature and pulls user, channel, trigger_id and response_url out of
specific places in each payload (slack_bolt/request/internals.py); a hand-written payload
that misses one of them makes a handler test pass for the wrong reason. Each function
returns ``(body, headers)`` ready to POST, or to wrap in ``AsyncBoltRequest(body=..., headers=...)``.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

__all__ = [
    "API_APP_ID",
    "BOT_ID",
    "BOT_USER_ID",
    "TEAM_DOMAIN",
    "VERIFICATION_TOKEN",
    "block_actions",
    "event_callback",
    "sign",
    "slash_command",
    "url_verification",
    "view_submission",
]

API_APP_ID = "A0FAKEAPP"
BOT_USER_ID = "UBOT"
BOT_ID = "BBOT"
TEAM_DOMAIN = "fake"
# The legacy verification token: Slack still sends it; Bolt ignores it unless configured to check it.
VERIFICATION_TOKEN = "fake-verification-token"

_action_ts = itertools.count(1)


def sign(
    body: str | bytes,
    *,
    secret: str,
    timestamp: int | None = None,
    content_type: str | None = None,
) -> dict[str, str]:
    """Headers Slack adds: ``v0=hex(hmac_sha256(secret, "v0:{ts}:{body}"))``, timestamp, content type."""
    ts = int(time.time()) if timestamp is None else timestamp
    text = body.decode("utf-8") if isinstance(body, bytes) else body
    digest = hmac.new(secret.encode(), f"v0:{ts}:{text}".encode(), hashlib.sha256).hexdigest()
    if content_type is None:
        is_json = text.lstrip().startswith("{")
        content_type = "application/json" if is_json else "application/x-www-form-urlencoded"
    return {
        "Content-Type": content_type,
        "X-Slack-Request-Timestamp": str(ts),
        "X-Slack-Signature": f"v0={digest}",
    }


def _user(user_id: str, user_name: str, team_id: str) -> dict[str, str]:
    return {"id": user_id, "username": user_name, "name": user_name, "team_id": team_id}


def _form_payload(payload: dict[str, Any], *, secret: str, timestamp: int | None) -> tuple[str, dict[str, str]]:
    """Interactivity requests are form-encoded with one ``payload`` field holding the JSON."""
    body = urlencode({"payload": json.dumps(payload)})
    return body, sign(body, secret=secret, timestamp=timestamp)


def slash_command(
    command: str,
    text: str,
    *,
    secret: str,
    response_url: str,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str = "C0GENERAL",
    channel_name: str = "general",
    team_id: str = "T0TEST",
    trigger_id: str = "trig-1",
    timestamp: int | None = None,
) -> tuple[str, dict[str, str]]:
    """A slash command: form-encoded fields, all those Slack sends."""
    fields = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "team_domain": TEAM_DOMAIN,
        "channel_id": channel_id,
        "channel_name": channel_name,
        "user_id": user_id,
        "user_name": user_name,
        "command": command if command.startswith("/") else f"/{command}",
        "text": text,
        "api_app_id": API_APP_ID,
        "is_enterprise_install": "false",
        "response_url": response_url,
        "trigger_id": trigger_id,
    }
    body = urlencode(fields)
    return body, sign(body, secret=secret, timestamp=timestamp)


def _action(
    action_id: str,
    value: str,
    *,
    block_id: str,
    action_type: str,
    selected_option: dict[str, Any] | None,
) -> dict[str, Any]:
    """One entry of ``actions``: where the chosen value lives depends on the element type."""
    action: dict[str, Any] = {
        "action_id": action_id,
        "block_id": block_id,
        "type": action_type,
        "action_ts": f"{int(time.time())}.{next(_action_ts):06d}",
    }
    option = selected_option or {"text": {"type": "plain_text", "text": value, "emoji": True}, "value": value}
    if action_type == "button":
        action["text"] = {"type": "plain_text", "text": value, "emoji": True}
        action["value"] = value
    elif action_type in ("static_select", "external_select", "overflow", "radio_buttons"):
        action["selected_option"] = option
    elif action_type in ("multi_static_select", "checkboxes"):
        action["selected_options"] = [option]
    elif action_type == "users_select":
        action["selected_user"] = value
    elif action_type == "conversations_select":
        action["selected_conversation"] = value
    elif action_type == "channels_select":
        action["selected_channel"] = value
    elif action_type == "datepicker":
        action["selected_date"] = value
    else:
        action["value"] = value
    return action


def block_actions(
    action_id: str,
    value: str,
    *,
    secret: str,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    channel_id: str | None = None,
    channel_name: str = "general",
    team_id: str = "T0TEST",
    message_ts: str | None = None,
    message: dict[str, Any] | None = None,
    response_url: str | None = None,
    trigger_id: str = "trig-2",
    block_id: str = "b",
    container: dict[str, Any] | None = None,
    view: dict[str, Any] | None = None,
    action_type: str = "button",
    selected_option: dict[str, Any] | None = None,
    state_values: dict[str, Any] | None = None,
    timestamp: int | None = None,
) -> tuple[str, dict[str, str]]:
    """A ``block_actions`` interaction from a message button/select, or from a view when ``view`` is given.

    From a message Slack includes ``channel``, ``message`` and ``response_url``; from a modal it
    includes ``view`` and no channel (``channel_id`` defaults to C0GENERAL only for messages).
    ``message`` may be a full stored message (e.g. ``fake_msg.to_api(...)``); ``message_ts`` wins for ts.
    """
    from_view = view is not None
    if channel_id is None and not from_view:
        channel_id = "C0GENERAL"
    payload: dict[str, Any] = {
        "type": "block_actions",
        "user": _user(user_id, user_name, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "enterprise": None,
        "is_enterprise_install": False,
        "state": {"values": state_values or {}},
        "actions": [
            _action(action_id, value, block_id=block_id, action_type=action_type, selected_option=selected_option)
        ],
    }
    if message is not None or message_ts is not None:
        msg = dict(message or {"type": "message", "user": BOT_USER_ID, "bot_id": BOT_ID, "text": ""})
        if message_ts is not None:
            msg["ts"] = message_ts
        payload["message"] = msg
    if channel_id is not None:
        payload["channel"] = {"id": channel_id, "name": channel_name}
    if from_view:
        payload["view"] = view
    if container is None:
        if from_view:
            container = {"type": "view", "view_id": (view or {}).get("id", "V1")}
        else:
            container = {
                "type": "message",
                "message_ts": payload.get("message", {}).get("ts"),
                "channel_id": channel_id,
                "is_ephemeral": False,
            }
    payload["container"] = container
    if response_url is not None:
        payload["response_url"] = response_url
    return _form_payload(payload, secret=secret, timestamp=timestamp)


def view_submission(
    callback_id: str,
    state_values: dict[str, Any],
    *,
    secret: str,
    user_id: str = "U0ALICE",
    user_name: str = "alice",
    team_id: str = "T0TEST",
    private_metadata: str = "",
    view_id: str = "V1",
    trigger_id: str = "trig-3",
    blocks: list[dict[str, Any]] | None = None,
    response_urls: list[dict[str, Any]] | None = None,
    timestamp: int | None = None,
) -> tuple[str, dict[str, str]]:
    """A modal's ``view_submission``: ``state_values`` is ``{block_id: {action_id: {type, value…}}}``."""
    view = {
        "id": view_id,
        "team_id": team_id,
        "type": "modal",
        "blocks": blocks or [],
        "private_metadata": private_metadata,
        "callback_id": callback_id,
        "state": {"values": state_values},
        "hash": "1700000000.fakehash",
        "title": {"type": "plain_text", "text": "Modal", "emoji": True},
        "clear_on_close": False,
        "notify_on_close": False,
        "close": {"type": "plain_text", "text": "Cancel", "emoji": True},
        "submit": {"type": "plain_text", "text": "Submit", "emoji": True},
        "previous_view_id": None,
        "root_view_id": view_id,
        "app_id": API_APP_ID,
        "external_id": "",
        "app_installed_team_id": team_id,
        "bot_id": BOT_ID,
    }
    payload = {
        "type": "view_submission",
        "team": {"id": team_id, "domain": TEAM_DOMAIN},
        "user": _user(user_id, user_name, team_id),
        "api_app_id": API_APP_ID,
        "token": VERIFICATION_TOKEN,
        "trigger_id": trigger_id,
        "view": view,
        "response_urls": response_urls or [],
        "is_enterprise_install": False,
        "enterprise": None,
    }
    return _form_payload(payload, secret=secret, timestamp=timestamp)


def event_callback(
    event: dict[str, Any],
    *,
    secret: str,
    event_id: str = "Ev1",
    team_id: str = "T0TEST",
    retry_num: int | None = None,
    retry_reason: str | None = None,
    timestamp: int | None = None,
) -> tuple[str, dict[str, str]]:
    """An Events API ``event_callback`` envelope (JSON); a retry adds X-Slack-Retry-Num/-Reason.

    ``event_ts`` is filled in when the event lacks it: the envelope schema requires it.
    """
    now = int(time.time()) if timestamp is None else timestamp
    event = dict(event)
    event.setdefault("event_ts", event.get("ts") or f"{now}.000100")
    envelope = {
        "token": VERIFICATION_TOKEN,
        "team_id": team_id,
        "context_team_id": team_id,
        "context_enterprise_id": None,
        "api_app_id": API_APP_ID,
        "event": event,
        "type": "event_callback",
        "event_id": event_id,
        "event_time": now,
        "authorizations": [
            {
                "enterprise_id": None,
                "team_id": team_id,
                "user_id": BOT_USER_ID,
                "is_bot": True,
                "is_enterprise_install": False,
            }
        ],
        "authed_users": [BOT_USER_ID],
        "is_ext_shared_channel": False,
        "event_context": f"4-fake-{event_id}",
    }
    body = json.dumps(envelope)
    headers = sign(body, secret=secret, timestamp=timestamp)
    if retry_num is not None:
        headers["X-Slack-Retry-Num"] = str(retry_num)
        headers["X-Slack-Retry-Reason"] = retry_reason or "http_timeout"
    elif retry_reason is not None:
        headers["X-Slack-Retry-Reason"] = retry_reason
    return body, headers


def url_verification(challenge: str, *, secret: str, timestamp: int | None = None) -> tuple[str, dict[str, str]]:
    """The handshake Slack sends when the Request URL is saved; the app must echo ``challenge``."""
    body = json.dumps({"token": VERIFICATION_TOKEN, "challenge": challenge, "type": "url_verification"})
    return body, sign(body, secret=secret, timestamp=timestamp)
