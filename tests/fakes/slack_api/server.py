"""A stateful fake of the Slack Web API, held to Slack's published method specs.

Why: no test machine can reach Slack, and a fake that accepts a call Slack would
reject makes a test lie. Every call is first checked against
``slack-web-api/methods/<method>.json`` (does the method exist, are the required
args there, are booleans/numbers well-formed), then a small handler applies it to
in-memory state and answers with the error codes those spec files list.

Use it with slack_sdk's real client::

    fake = FakeSlack()
    await fake.start()
    client = AsyncWebClient(token=fake.bot_token, base_url=fake.url)

Deliberate departures from the brief are documented where they happen (search
for "Slack:" in comments); each follows the spec files or Slack's documentation.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import json
import math
import os
import re
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from tests.fakes.slack_oidc import OpenIDConnect

__all__ = [
    "Call",
    "Channel",
    "FakeFile",
    "FakeSlack",
    "Message",
    "SlackError",
    "User",
    "Usergroup",
    "load_spec",
    "validate_blocks",
]

# --------------------------------------------------------------------------------------
# Specs
# --------------------------------------------------------------------------------------

_SPEC_CANDIDATES = (
    Path(os.environ.get("SLACK_WEB_API_SPECS", "/nonexistent")),
    Path(__file__).resolve().parents[4] / "shared" / "specs" / "slack-web-api" / "methods",
    Path("/work/shared/specs/slack-web-api/methods"),
)
_METHOD_NAME = re.compile(r"^[A-Za-z0-9_.]+$")


@lru_cache(maxsize=1)
def _specs_dir() -> Path:
    for candidate in _SPEC_CANDIDATES:
        if candidate.is_dir():
            return candidate
    raise RuntimeError(
        "Slack Web API specs not found; set SLACK_WEB_API_SPECS to the folder holding <method>.json files"
    )


@cache
def load_spec(method: str) -> dict[str, Any] | None:
    """The published spec of one Web API method, or None when Slack has no such method."""
    if not _METHOD_NAME.match(method):
        return None
    path = _specs_dir() / f"{method}.json"
    if not path.is_file():
        return None
    return json.loads(path.read_text())


# --------------------------------------------------------------------------------------
# State (plain dataclasses so tests can assert on them directly)
# --------------------------------------------------------------------------------------


@dataclass
class Message:
    """One message as Slack stores it; ephemeral ones keep ``ephemeral_to`` and never show in history."""

    ts: str
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    thread_ts: str | None = None
    attachments: list[dict[str, Any]] | None = None
    edited: bool = False
    ephemeral_to: str | None = None
    reactions: dict[str, list[str]] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    reply_broadcast: bool = False

    def to_api(self, *, bot_user_id: str, bot_id: str, team_id: str) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        out["team"] = team_id
        if self.user == bot_user_id:
            out["bot_id"] = bot_id
        if self.blocks is not None:
            out["blocks"] = self.blocks
        if self.attachments:
            out["attachments"] = self.attachments
        if self.thread_ts:
            out["thread_ts"] = self.thread_ts
        if self.edited:
            out["edited"] = {"user": self.user, "ts": self.ts}
        if self.reactions:
            out["reactions"] = [
                {"name": name, "users": list(users), "count": len(users)} for name, users in self.reactions.items()
            ]
        if self.files:
            out["files"] = [{"id": file_id} for file_id in self.files]
        if self.metadata:
            out["metadata"] = self.metadata
        return out


@dataclass
class Channel:
    """A conversation: public/private channel, IM (``is_im``, id ``D…``) or group DM (``is_mpim``)."""

    id: str
    name: str
    is_private: bool = False
    is_im: bool = False
    members: set[str] = field(default_factory=set)
    topic: str = ""
    purpose: str = ""
    archived: bool = False
    messages: list[Message] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)
    is_mpim: bool = False
    user: str | None = None  # the other party of an IM
    creator: str = ""
    created: int = field(default_factory=lambda: int(time.time()))
    previous_names: list[str] = field(default_factory=list)

    def find(self, ts: str, *, ephemeral: bool = False) -> Message | None:
        """The message with this ts (ephemeral ones only when asked: Slack can't address them later)."""
        for msg in self.messages:
            if msg.ts == ts and (ephemeral or msg.ephemeral_to is None):
                return msg
        return None

    def to_api(self, *, bot_user_id: str, num_members: bool = False) -> dict[str, Any]:
        if self.is_im:
            return {
                "id": self.id,
                "created": self.created,
                "is_im": True,
                "is_org_shared": False,
                "user": self.user,
                "is_user_deleted": False,
                "priority": 0,
            }
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "is_channel": not self.is_mpim,
            "is_group": self.is_private and not self.is_mpim,
            "is_im": False,
            "is_mpim": self.is_mpim,
            "is_private": self.is_private,
            "created": self.created,
            "creator": self.creator,
            "is_archived": self.archived,
            "is_general": self.name == "general",
            "unlinked": 0,
            "name_normalized": self.name,
            "is_shared": False,
            "is_ext_shared": False,
            "is_org_shared": False,
            "pending_shared": [],
            "is_pending_ext_shared": False,
            "is_member": bot_user_id in self.members,
            "topic": {"value": self.topic, "creator": "", "last_set": 0},
            "purpose": {"value": self.purpose, "creator": "", "last_set": 0},
            "previous_names": list(self.previous_names),
        }
        if num_members:
            out["num_members"] = len(self.members)
        return out


@dataclass
class User:
    id: str
    name: str
    is_bot: bool = False
    deleted: bool = False
    real_name: str = ""
    email: str | None = None
    tz: str = "Europe/London"

    def to_api(self, team_id: str) -> dict[str, Any]:
        real_name = self.real_name or self.name
        profile: dict[str, Any] = {
            "real_name": real_name,
            "display_name": self.name,
            "real_name_normalized": real_name,
            "display_name_normalized": self.name,
            "team": team_id,
            "image_48": f"https://fake.slack.com/avatars/{self.id}_48.png",
        }
        if self.email:
            profile["email"] = self.email
        return {
            "id": self.id,
            "team_id": team_id,
            "name": self.name,
            "deleted": self.deleted,
            "real_name": real_name,
            "tz": self.tz,
            "is_admin": False,
            "is_owner": False,
            "is_bot": self.is_bot,
            "is_app_user": False,
            "updated": 0,
            "profile": profile,
        }


@dataclass
class Usergroup:
    id: str
    handle: str
    users: list[str]


@dataclass
class FakeFile:
    """An upload ticket from files.getUploadURLExternal; ``content`` arrives via the upload URL."""

    id: str
    filename: str
    title: str
    length: int
    content: bytes | None = None
    channel_id: str | None = None
    completed: bool = False
    channels: list[str] = field(default_factory=list)
    created: int = field(default_factory=lambda: int(time.time()))

    def to_api(self, user: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "created": self.created,
            "timestamp": self.created,
            "name": self.filename,
            "title": self.title,
            "mimetype": "application/octet-stream",
            "filetype": self.filename.rsplit(".", 1)[-1] if "." in self.filename else "binary",
            "user": user,
            "size": len(self.content) if self.content is not None else self.length,
            "is_public": any(c.startswith("C") for c in self.channels),
            "url_private": f"https://files.fake.slack.com/files-pri/{self.id}/{self.filename}",
            "permalink": f"https://fake.slack.com/files/{user}/{self.id}/{self.filename}",
            "channels": list(self.channels),
            "groups": [],
            "ims": [],
        }


@dataclass
class Call:
    """One request the fake answered: the method, its normalised args, the HTTP status and JSON body."""

    method: str
    args: dict[str, Any]
    status: int
    response: dict[str, Any]


class SlackError(Exception):
    """Raised by handlers; becomes ``{"ok": false, "error": error}`` plus Slack-style messages."""

    def __init__(self, error: str, *messages: str) -> None:
        super().__init__(error)
        self.error = error
        self.messages = list(messages)


# --------------------------------------------------------------------------------------
# Block Kit validation (limits Slack enforces server-side; slack_sdk only checks some)
# --------------------------------------------------------------------------------------

_BLOCK_TYPES = {
    "section",
    "divider",
    "header",
    "actions",
    "context",
    "context_actions",
    "input",
    "image",
    "rich_text",
    "file",
    "video",
    "markdown",
    "call",
    "table",
}
_SELECTS_WITH_OPTIONS = {"static_select", "multi_static_select", "overflow", "radio_buttons", "checkboxes"}


def _text_errors(obj: Any, ptr: str, *, max_len: int, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or not isinstance(obj.get("text"), str):
        return [f"[ERROR] must provide a text object with a string `text` [json-pointer:{ptr}]"]
    errors = []
    kind = obj.get("type")
    allowed = ("plain_text",) if plain_only else ("plain_text", "mrkdwn")
    if kind not in allowed:
        errors.append(f"[ERROR] must be one of {list(allowed)} [json-pointer:{ptr}/type]")
    if len(obj["text"]) == 0:
        errors.append(f"[ERROR] must be more than 0 characters [json-pointer:{ptr}/text]")
    if len(obj["text"]) > max_len:
        errors.append(f"[ERROR] must be less than {max_len + 1} characters [json-pointer:{ptr}/text]")
    return errors


def _button_errors(el: dict[str, Any], ptr: str) -> list[str]:
    errors = _text_errors(el.get("text"), f"{ptr}/text", max_len=75, plain_only=True)
    if len(str(el.get("value", ""))) > 2000:
        errors.append(f"[ERROR] must be less than 2001 characters [json-pointer:{ptr}/value]")
    if len(str(el.get("url", ""))) > 3000:
        errors.append(f"[ERROR] must be less than 3001 characters [json-pointer:{ptr}/url]")
    if el.get("style") not in (None, "primary", "danger"):
        errors.append(f"[ERROR] must be one of [primary, danger] [json-pointer:{ptr}/style]")
    return errors


def _options_errors(options: Any, kind: str, ptr: str) -> list[str]:
    limit = 5 if kind == "overflow" else 10 if kind in ("radio_buttons", "checkboxes") else 100
    if not isinstance(options, list) or len(options) > limit:
        return [f"[ERROR] must provide at most {limit} items [json-pointer:{ptr}/options]"]
    errors: list[str] = []
    for i, opt in enumerate(options):
        if not isinstance(opt, dict):
            errors.append(f"[ERROR] must be an object [json-pointer:{ptr}/options/{i}]")
            continue
        errors += _text_errors(opt.get("text"), f"{ptr}/options/{i}/text", max_len=75)
        if len(str(opt.get("value", ""))) > 150:
            errors.append(f"[ERROR] must be less than 151 characters [json-pointer:{ptr}/options/{i}]")
    return errors


def _element_errors(el: Any, ptr: str) -> list[str]:
    if not isinstance(el, dict) or not isinstance(el.get("type"), str):
        return [f"[ERROR] missing required field: type [json-pointer:{ptr}]"]
    errors: list[str] = []
    action_id = el.get("action_id")
    if action_id is not None and (not isinstance(action_id, str) or len(action_id) > 255):
        errors.append(f"[ERROR] must be less than 256 characters [json-pointer:{ptr}/action_id]")
    kind = el["type"]
    if kind == "button":
        errors += _button_errors(el, ptr)
    if "placeholder" in el:
        errors += _text_errors(el["placeholder"], f"{ptr}/placeholder", max_len=150, plain_only=True)
    if kind in _SELECTS_WITH_OPTIONS and "options" in el:
        errors += _options_errors(el["options"], kind, ptr)
    return errors


def _section_errors(block: dict[str, Any], ptr: str) -> list[str]:
    errors: list[str] = []
    if "text" not in block and "fields" not in block:
        errors.append(f"[ERROR] must provide either text or fields [json-pointer:{ptr}]")
    if "text" in block:
        errors += _text_errors(block["text"], f"{ptr}/text", max_len=3000)
    fields = block.get("fields")
    if fields is not None:
        if not isinstance(fields, list) or len(fields) > 10:
            errors.append(f"[ERROR] must provide at most 10 items [json-pointer:{ptr}/fields]")
        else:
            for i, fld in enumerate(fields):
                errors += _text_errors(fld, f"{ptr}/fields/{i}", max_len=2000)
    if "accessory" in block:
        errors += _element_errors(block["accessory"], f"{ptr}/accessory")
    return errors


def _header_errors(block: dict[str, Any], ptr: str) -> list[str]:
    return _text_errors(block.get("text"), f"{ptr}/text", max_len=150, plain_only=True)


_ELEMENT_LIMITS = {"actions": 25, "context": 10, "context_actions": 5}


def _elements_block_errors(block: dict[str, Any], ptr: str) -> list[str]:
    """actions, context and context_actions: a bounded elements list (context items are not elements)."""
    kind = block["type"]
    limit = _ELEMENT_LIMITS[kind]
    elements = block.get("elements")
    if not isinstance(elements, list) or not elements or len(elements) > limit:
        return [f"[ERROR] must provide between 1 and {limit} items [json-pointer:{ptr}/elements]"]
    if kind == "context":
        return []
    errors: list[str] = []
    for i, el in enumerate(elements):
        errors += _element_errors(el, f"{ptr}/elements/{i}")
    return errors


def _input_errors(block: dict[str, Any], ptr: str) -> list[str]:
    errors = _text_errors(block.get("label"), f"{ptr}/label", max_len=2000, plain_only=True)
    if "element" not in block:
        errors.append(f"[ERROR] missing required field: element [json-pointer:{ptr}]")
    else:
        errors += _element_errors(block["element"], f"{ptr}/element")
    if "hint" in block:
        errors += _text_errors(block["hint"], f"{ptr}/hint", max_len=2000, plain_only=True)
    return errors


def _image_errors(block: dict[str, Any], ptr: str) -> list[str]:
    errors: list[str] = []
    if "image_url" not in block and "slack_file" not in block:
        errors.append(f"[ERROR] missing required field: image_url [json-pointer:{ptr}]")
    if not isinstance(block.get("alt_text"), str) or len(block["alt_text"]) > 2000:
        errors.append(f"[ERROR] missing or too long field: alt_text [json-pointer:{ptr}]")
    return errors


def _markdown_errors(block: dict[str, Any], ptr: str) -> list[str]:
    if not isinstance(block.get("text"), str) or len(block["text"]) > 12000:
        return [f"[ERROR] must be a string of at most 12000 characters [json-pointer:{ptr}/text]"]
    return []


# Block types without an entry are accepted as they are (the fake checks only these).
_BLOCK_CHECKS: dict[str, Callable[[dict[str, Any], str], list[str]]] = {
    "section": _section_errors,
    "header": _header_errors,
    "actions": _elements_block_errors,
    "context": _elements_block_errors,
    "context_actions": _elements_block_errors,
    "input": _input_errors,
    "image": _image_errors,
    "markdown": _markdown_errors,
}


def _block_errors(block: dict[str, Any], ptr: str) -> list[str]:
    check = _BLOCK_CHECKS.get(block["type"])
    return check(block, ptr) if check is not None else []


def _action_ids(block: dict[str, Any]) -> list[str]:
    elements = list(block.get("elements") or []) if block.get("type") != "context" else []
    for key in ("accessory", "element"):
        if isinstance(block.get(key), dict):
            elements.append(block[key])
    return [el["action_id"] for el in elements if isinstance(el, dict) and isinstance(el.get("action_id"), str)]


def _decode_json_arg(key: str, text: str) -> Any:
    try:
        return json.loads(text.strip())
    except ValueError as exc:
        error = "invalid_blocks_format" if key == "blocks" else "invalid_arguments"
        raise SlackError(error, f"[ERROR] {key} is not valid JSON") from exc


def _coerce_arg(key: str, value: Any, kind: str | None) -> Any:
    """Form fields arrive as strings: coerce them to the spec's boolean/number type."""
    if kind == "boolean" and not isinstance(value, bool):
        return str(value).strip().lower() in ("1", "true", "yes")
    if kind in ("integer", "number") and isinstance(value, str):
        try:
            return int(value) if kind == "integer" else float(value)
        except ValueError as exc:
            raise SlackError("invalid_arguments", f"[ERROR] {key} must be a number") from exc
    return value


def validate_blocks(blocks: Any, *, max_blocks: int = 50, ptr: str = "/blocks") -> list[str]:
    """Slack-style error messages for a blocks array; empty when Slack would accept it.

    Slack: ``block_id`` must be unique within the message/view; ``action_id`` must be unique
    "among all other action_ids in the containing block" (Block Kit reference), so the same
    action_id in two different blocks is accepted, as Slack accepts it.
    """
    if not isinstance(blocks, list):
        return [f"[ERROR] must be an array [json-pointer:{ptr}]"]
    errors: list[str] = []
    if len(blocks) > max_blocks:
        errors.append(f"[ERROR] no more than {max_blocks} items allowed [json-pointer:{ptr}]")
    seen_block_ids: set[str] = set()
    for i, block in enumerate(blocks):
        here = f"{ptr}/{i}"
        if not isinstance(block, dict) or not isinstance(block.get("type"), str):
            errors.append(f"[ERROR] missing required field: type [json-pointer:{here}]")
            continue
        if block["type"] not in _BLOCK_TYPES:
            errors.append(f"[ERROR] unsupported type: {block['type']} [json-pointer:{here}/type]")
            continue
        block_id = block.get("block_id")
        if block_id is not None:
            if not isinstance(block_id, str) or not block_id or len(block_id) > 255:
                errors.append(f"[ERROR] must be 1 to 255 characters [json-pointer:{here}/block_id]")
            elif block_id in seen_block_ids:
                errors.append(f"[ERROR] duplicate block_id: {block_id} [json-pointer:{here}/block_id]")
            else:
                seen_block_ids.add(block_id)
        action_ids = _action_ids(block)
        duplicates = sorted({a for a in action_ids if action_ids.count(a) > 1})
        errors.extend(f"[ERROR] duplicate action_id: {dup} [json-pointer:{here}]" for dup in duplicates)
        errors += _block_errors(block, here)
    return errors


# --------------------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------------------

_CHANNEL_NAME = re.compile(r"^[a-z0-9_-]+$")
_REACTION_NAME = re.compile(r"^[a-z0-9_+'-]+(::skin-tone-[2-6])?$")
_JSON_ARGS = ("blocks", "attachments", "view", "files", "metadata")
_MISSING_ARG_ERRORS = {
    "channel": "channel_not_found",
    "name": "invalid_name_required",
    "users": "no_user",
    "user": "user_not_found",
    "ts": "message_not_found",
    "message_ts": "message_not_found",
    "timestamp": "no_item_specified",
    "usergroup": "no_such_subteam",
    "file": "file_not_found",
    "email": "users_not_found",
}


def _id_list(value: Any) -> list[str]:
    """``users``/``channels`` arrive as a list, a JSON array string, or a comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except ValueError:
                return [text]
        else:
            return [part.strip() for part in text.split(",") if part.strip()]
    return [str(v).strip() for v in value if str(v).strip()]


def _encode_cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


def _decode_cursor(cursor: str) -> int:
    try:
        kind, _, offset = base64.b64decode(cursor.encode(), validate=True).decode().partition(":")
        if kind != "offset":
            raise ValueError(cursor)
        return int(offset)
    except ValueError as exc:
        raise SlackError("invalid_cursor") from exc


def _paginate(items: list[Any], args: dict[str, Any], *, default: int = 100) -> tuple[list[Any], str]:
    """One page of ``items`` and the next cursor ('' at the end), as Slack's cursor pagination."""
    start = _decode_cursor(args["cursor"]) if args.get("cursor") else 0
    limit = int(args.get("limit") or default)
    if limit <= 0:
        limit = default
    page = items[start : start + limit]
    return page, _encode_cursor(start + limit) if start + limit < len(items) else ""


def _name_error(name: str) -> str | None:
    """Slack's channel-name rules: lowercase letters, digits, - and _, at most 80 chars."""
    if not name:
        return "invalid_name_required"
    if len(name) > 80:
        return "invalid_name_maxlength"
    if not _CHANNEL_NAME.match(name):
        return "invalid_name_specials"
    if not name.strip("-_"):
        return "invalid_name_punctuation"
    return None


Handler = Callable[[dict[str, Any]], dict[str, Any]]


def _manifest_scopes() -> list[str]:
    """The bot scopes manifest.yml asks for: what a token of a freshly installed app carries."""
    import yaml

    path = Path(__file__).resolve().parents[3] / "manifest.yml"
    try:
        manifest = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        return [str(s) for s in manifest["oauth_config"]["scopes"]["bot"]]
    except (OSError, KeyError, TypeError, yaml.YAMLError):
        return []


# --------------------------------------------------------------------------------------
# The fake
# --------------------------------------------------------------------------------------


class FakeSlack:
    """An aiohttp server on 127.0.0.1 that answers Web API calls like Slack does."""

    bot_token: str = "xoxb-test-token"
    app_token: str = "xapp-1-test-token"
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    team_id: str = "T0TEST"
    app_id: str = "A0FAKEAPP"

    # Slack truncates chat.postMessage text beyond 40,000 chars (changelog 2018-04); the spec
    # gives chat.update msg_too_long at 4,000 and chat.postEphemeral msg_too_long.
    max_post_text: int = 40_000
    max_update_text: int = 4_000
    max_ephemeral_text: int = 40_000
    response_url_max_uses: int = 5

    def __init__(self) -> None:
        self.channels: dict[str, Channel] = {}
        self.users: dict[str, User] = {}
        self.usergroups: dict[str, Usergroup] = {}
        self.responses: list[dict[str, Any]] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.socket_acks: dict[str, dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        self.files: dict[str, FakeFile] = {}
        self.calls: list[Call] = []
        self._holds: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Event]] = []
        self._holds_after: list[tuple[str, Callable[[dict[str, Any]], bool], asyncio.Event]] = []
        self._dropped: set[int] = set()  # ids of `hold` gates released without acting (drop_held)
        self.held: list[tuple[str, dict[str, Any]]] = []  # calls that waited at a `hold`
        self.rate_limit_tier2: bool = False
        self.tier2_per_minute: int = 20
        self.clock: Callable[[], float] = time.monotonic
        # Slack: auth.test answers with the token's scopes in the `x-oauth-scopes` header; None leaves it out.
        self.oauth_scopes: list[str] | None = _manifest_scopes()
        self._open_views: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        self._response_contexts: dict[str, dict[str, str | None]] = {}
        self._response_uses: dict[str, int] = {}
        self._faults: dict[str, deque[tuple[str, Any]]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._runner: web.AppRunner | None = None
        self._base = ""
        self.add_user(self.bot_user_id, "incident-bot", is_bot=True)
        # Sign in with Slack (tests/fakes/slack_oidc.py): the authorize page and the two openid methods.
        self.oidc = OpenIDConnect(self)
        self._handlers: dict[str, Handler] = {
            "api.test": self._api_test,
            "auth.test": self._auth_test,
            "bots.info": self._bots_info,
            "users.info": self._users_info,
            "users.list": self._users_list,
            "users.lookupByEmail": self._users_lookup_by_email,
            "usergroups.list": self._usergroups_list,
            "usergroups.users.list": self._usergroups_users_list,
            "conversations.create": self._conversations_create,
            "conversations.invite": self._conversations_invite,
            "conversations.setTopic": self._conversations_set_topic,
            "conversations.setPurpose": self._conversations_set_purpose,
            "conversations.info": self._conversations_info,
            "conversations.join": self._conversations_join,
            "conversations.list": self._conversations_list,
            "conversations.members": self._conversations_members,
            "conversations.history": self._conversations_history,
            "conversations.replies": self._conversations_replies,
            "conversations.open": self._conversations_open,
            "conversations.archive": self._conversations_archive,
            "conversations.rename": self._conversations_rename,
            "chat.postMessage": self._chat_post_message,
            "chat.update": self._chat_update,
            "chat.postEphemeral": self._chat_post_ephemeral,
            "chat.delete": self._chat_delete,
            "chat.getPermalink": self._chat_get_permalink,
            "apps.connections.open": self._apps_connections_open,
            "pins.add": self._pins_add,
            "pins.remove": self._pins_remove,
            "pins.list": self._pins_list,
            "reactions.add": self._reactions_add,
            "reactions.remove": self._reactions_remove,
            "views.open": self._views_open,
            "views.push": self._views_push,
            "views.update": self._views_update,
            "views.publish": self._views_publish,
            "files.getUploadURLExternal": self._files_get_upload_url,
            "files.completeUploadExternal": self._files_complete_upload,
            "files.info": self._files_info,
            "openid.connect.token": self.oidc.token,
        }

    # ---------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port."""
        app = web.Application(client_max_size=1024**3)
        app.router.add_route("*", "/api/{method}", self._handle_api)
        app.router.add_post("/upload/v1/{file_id}", self._handle_upload)
        app.router.add_post("/respond/{key}", self._handle_response_url)
        app.router.add_get("/socket", self._handle_socket)
        app.router.add_get("/openid/connect/authorize", self.oidc.authorize)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self._base = f"http://{host}:{port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeSlack:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def authorize_url(self) -> str:
        """Where SLACK_AUTHORIZE_URL points in tests: the fake's Sign in with Slack page."""
        return f"{self.url.removesuffix('/api/')}/openid/connect/authorize"

    @property
    def url(self) -> str:
        """Base URL for ``AsyncWebClient(base_url=...)``; slack_sdk appends the method name."""
        if not self._base:
            raise RuntimeError("FakeSlack.start() has not been awaited")
        return f"{self._base}/api/"

    def response_url(
        self,
        key: str = "r",
        *,
        channel_id: str | None = None,
        user_id: str | None = None,
        message_ts: str | None = None,
    ) -> str:
        """A response_url on this server; POSTs to it land in ``.responses``.

        With ``channel_id`` (and ``user_id``/``message_ts``) the POST also acts like Slack's:
        ``in_channel`` posts a message, the default posts an ephemeral one to ``user_id``,
        ``replace_original``/``delete_original`` change the message at ``message_ts``.
        """
        self._response_contexts[key] = {"channel": channel_id, "user": user_id, "message_ts": message_ts}
        return f"{self.url.removesuffix('/api/')}/respond/{key}"

    # ---------------------------------------------------------------- seeding

    def add_user(
        self,
        user_id: str,
        name: str,
        *,
        is_bot: bool = False,
        deleted: bool = False,
        real_name: str = "",
        email: str | None = None,
    ) -> None:
        self.users[user_id] = User(user_id, name, is_bot, deleted, real_name, email)

    def add_channel(
        self,
        name: str,
        *,
        channel_id: str | None = None,
        private: bool = False,
        members: Iterable[str] = (),
        creator: str = "U0SEED",
        created: int | None = None,
        archived: bool = False,
    ) -> str:
        """Seed a channel (the bot is a member only if listed); returns its id.

        ``creator``/``created`` (Unix seconds, default now) are what Slack reports in the conversation
        object; seed ``creator=fake.bot_user_id`` for a channel the bot made earlier.
        """
        if self.channel_by_name(name) is not None:
            raise ValueError(f"channel name {name!r} already seeded")
        channel_id = channel_id or self._new_id("C")
        is_im = channel_id.startswith("D")
        self.channels[channel_id] = Channel(
            id=channel_id,
            name=name,
            is_private=private or is_im,
            is_im=is_im,
            members=set(members),
            creator=creator,
            created=int(time.time()) if created is None else created,
            archived=archived,
        )
        return channel_id

    def add_usergroup(self, group_id: str, handle: str, users: list[str]) -> None:
        self.usergroups[group_id] = Usergroup(group_id, handle, list(users))

    # ---------------------------------------------------------------- Socket Mode

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

    def user_says(self, channel_id: str, user_id: str, text: str) -> dict[str, Any]:
        """A person posts in a channel; returns the `message` event Slack would deliver for it."""
        message = Message(ts=self._next_ts(), channel=channel_id, user=user_id, text=text)
        self.channels[channel_id].messages.append(message)
        return {
            "type": "message",
            "channel": channel_id,
            "user": user_id,
            "text": text,
            "ts": message.ts,
            "channel_type": "group" if self.channels[channel_id].is_private else "channel",
        }

    # ---------------------------------------------------------------- inspection

    def channel_by_name(self, name: str) -> Channel | None:
        name = name.lstrip("#")
        return next((c for c in self.channels.values() if c.name == name and not c.is_im), None)

    def messages(self, channel_id: str) -> list[Message]:
        """Every message in the channel, oldest first, ephemeral ones included."""
        channel = self.channels.get(channel_id)
        return list(channel.messages) if channel else []

    def dms(self, user_id: str) -> list[Message]:
        """Messages in the IM the bot opened with ``user_id``."""
        im = self._im_with(user_id)
        return list(im.messages) if im else []

    def calls_to(self, method: str) -> list[Call]:
        return [c for c in self.calls if c.method == method]

    # ---------------------------------------------------------------- fault injection

    def throttle(self, method: str, *, count: int = 1, retry_after: int = 1) -> None:
        """Next ``count`` calls to ``method``: HTTP 429 with Retry-After, error ``ratelimited``."""
        self._faults.setdefault(method, deque()).extend([("throttle", retry_after)] * count)

    def fail(self, method: str, error: str, *, count: int = 1) -> None:
        """Next ``count`` calls to ``method`` answer ``{"ok": false, "error": error}``."""
        self._faults.setdefault(method, deque()).extend([("fail", error)] * count)

    def server_error(self, method: str, *, count: int = 1, status: int = 500) -> None:
        """Next ``count`` calls to ``method`` answer HTTP ``status`` with an HTML body, as a gateway would."""
        self._faults.setdefault(method, deque()).extend([("server", status)] * count)

    def hold(self, method: str, when: Callable[[dict[str, Any]], bool] = lambda args: True) -> asyncio.Event:
        """Calls to ``method`` whose arguments match ``when`` wait (unanswered) until the event is set."""
        gate = asyncio.Event()
        self._holds.append((method, when, gate))
        return gate

    def hold_after(self, method: str, when: Callable[[dict[str, Any]], bool] = lambda args: True) -> asyncio.Event:
        """Like `hold`, but Slack has done it (the channel exists, the message is posted): only the
        answer waits, as when the caller dies between Slack acting and hearing back."""
        gate = asyncio.Event()
        self._holds_after.append((method, when, gate))
        return gate

    def drop_held(self) -> None:
        """Release every call waiting in `hold` without acting on it: its caller died (kill -9)
        before the request was complete, so Slack never did it."""
        for _, _, gate in self._holds:
            if not gate.is_set():
                self._dropped.add(id(gate))
                gate.set()

    # ---------------------------------------------------------------- HTTP plumbing

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        method = request.match_info["method"]
        try:
            args = await self._read_args(request)
        except SlackError as exc:
            return self._answer(method, {}, self._error_body(exc))
        for held, when, gate in list(self._holds):
            if held == method and not gate.is_set() and when(args):
                self.held.append((method, args))
                await gate.wait()
                if id(gate) in self._dropped:
                    return web.Response(status=502, text="the caller went away")
        token = args.pop("token", None)
        auth = request.headers.get("Authorization", "")
        if auth.lower().startswith("bearer "):
            token = auth[7:].strip()
        answer = self._dispatch(method, dict(args), token)
        for held, when, gate in list(self._holds_after):
            if held == method and not gate.is_set() and when(args):
                self.held.append((method, args))
                await gate.wait()
        return answer

    async def _read_args(self, request: web.Request) -> dict[str, Any]:
        """JSON body, then form body, then query string (later sources never override earlier ones)."""
        args: dict[str, Any] = dict(request.query)
        ctype = request.content_type
        if ctype.startswith("multipart/"):
            form = await request.post()
            args.update({k: v for k, v in form.items() if isinstance(v, str)})
            return args
        raw = await request.read()
        if not raw:
            return args
        if ctype == "application/json":
            try:
                body = json.loads(raw)
            except ValueError as exc:
                raise SlackError("invalid_json", "[ERROR] body is not valid JSON") from exc
            if not isinstance(body, dict):
                raise SlackError("invalid_json", "[ERROR] body must be a JSON object")
            args.update(body)
        else:
            args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        return args

    def _answer(
        self,
        method: str,
        args: dict[str, Any],
        body: dict[str, Any],
        *,
        status: int = 200,
        headers: dict[str, str] | None = None,
    ) -> web.Response:
        self.calls.append(Call(method, args, status, body))
        return web.json_response(body, status=status, headers=headers)

    @staticmethod
    def _error_body(exc: SlackError) -> dict[str, Any]:
        body: dict[str, Any] = {"ok": False, "error": exc.error}
        if exc.messages:
            body["response_metadata"] = {"messages": exc.messages}
        return body

    def _dispatch(self, method: str, args: dict[str, Any], token: str | None) -> web.Response:
        spec = load_spec(method)
        if spec is None:
            note = f"{method} is not a Slack Web API method"
            return self._answer(method, args, {"ok": False, "error": "unknown_method"}, headers={"X-Fake-Slack": note})
        fault = self._next_fault(method)
        if fault is not None:
            return self._fault_response(method, args, fault)
        if method == "openid.connect.userInfo":  # a user token from openid.connect.token, not the bot's
            try:
                return self._answer(method, args, {"ok": True, **self.oidc.user_info(token)})
            except SlackError as exc:
                return self._answer(method, args, self._error_body(exc))
        auth_error = self._auth_error(method, spec, token)
        if auth_error is not None:
            return self._answer(method, args, {"ok": False, "error": auth_error})
        handler = self._handlers.get(method)
        if handler is None:
            note = f"FakeSlack does not implement {method}: add a handler in tests/fakes/slack_api.py"
            return self._answer(method, args, {"ok": False, "error": "unknown_method"}, headers={"X-Fake-Slack": note})
        retry_after = self._rate_limited(method)
        if retry_after is not None:
            return self._ratelimited(method, args, retry_after)
        try:
            args = self._normalise(spec, args)
            self._check_required(spec, args)
            body = {"ok": True, **handler(args)}
        except SlackError as exc:
            return self._answer(method, args, self._error_body(exc))
        if method == "auth.test" and self.oauth_scopes is not None:
            return self._answer(method, args, body, headers={"x-oauth-scopes": ",".join(self.oauth_scopes)})
        return self._answer(method, args, body)

    def _fault_response(self, method: str, args: dict[str, Any], fault: tuple[str, Any]) -> web.Response:
        """Answer with a queued fault: a 429, an HTML 5xx page, or a Slack error code."""
        kind, value = fault
        if kind == "throttle":
            return self._ratelimited(method, args, value)
        if kind == "server":
            self.calls.append(Call(method, args, value, {}))
            html = f"<html><body><h1>{value} Server Error</h1></body></html>"
            return web.Response(status=value, text=html, content_type="text/html")
        return self._answer(method, args, {"ok": False, "error": value})

    def _ratelimited(self, method: str, args: dict[str, Any], retry_after: Any) -> web.Response:
        body = {"ok": False, "error": "ratelimited"}
        return self._answer(method, args, body, status=429, headers={"Retry-After": str(retry_after)})

    def _auth_error(self, method: str, spec: dict[str, Any], token: str | None) -> str | None:
        """not_authed / invalid_auth for a method whose spec requires a token, else None."""
        if "token" not in (spec.get("args", {}).get("required") or []):
            return None
        # apps.connections.open takes the app-level token (Socket Mode); everything else the bot token.
        valid_token = self.app_token if method == "apps.connections.open" else self.bot_token
        if not token:
            return "not_authed"
        if token != valid_token:
            return "invalid_auth"
        return None

    def _next_fault(self, method: str) -> tuple[str, Any] | None:
        queue = self._faults.get(method)
        return queue.popleft() if queue else None

    def _rate_limited(self, method: str) -> int | None:
        """Sliding-window tier-2 limit on conversations.create when ``rate_limit_tier2`` is on."""
        if not (self.rate_limit_tier2 and method == "conversations.create"):
            return None
        now = self.clock()
        window = self._windows.setdefault(method, deque())
        while window and window[0] <= now - 60.0:
            window.popleft()
        if len(window) >= self.tier2_per_minute:
            return max(1, math.ceil(window[0] + 60.0 - now))
        window.append(now)
        return None

    @staticmethod
    def _normalise(spec: dict[str, Any], args: dict[str, Any]) -> dict[str, Any]:
        """Decode JSON-encoded form fields and coerce booleans/numbers by the spec's arg types."""
        props = spec.get("args", {}).get("properties", {})
        out: dict[str, Any] = {}
        for key, raw in args.items():
            json_encoded = key in _JSON_ARGS and isinstance(raw, str)
            if json_encoded and not raw.strip():
                continue  # an empty JSON field counts as absent
            value = _decode_json_arg(key, raw) if json_encoded else raw
            out[key] = _coerce_arg(key, value, props.get(key, {}).get("type"))
        return out

    @staticmethod
    def _check_required(spec: dict[str, Any], args: dict[str, Any]) -> None:
        """Reject a call missing a required arg, with the spec's specific error when it lists one."""
        errors = spec.get("errors", {})
        for name in spec.get("args", {}).get("required", []):
            if name == "token" or args.get(name) not in (None, "", [], {}):
                continue
            specific = _MISSING_ARG_ERRORS.get(name, "")
            if specific not in errors:
                specific = "missing_argument" if "missing_argument" in errors else "invalid_arguments"
            raise SlackError(specific, f"[ERROR] missing required field: {name}")

    # ---------------------------------------------------------------- state helpers

    def _new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids):09d}"

    def _next_ts(self) -> str:
        """Unique, strictly increasing message timestamps ("seconds.micro", as Slack's)."""
        now_us = max(int(time.time() * 1_000_000), self._last_ts_us + 1)
        self._last_ts_us = now_us
        return f"{now_us // 1_000_000}.{now_us % 1_000_000:06d}"

    def _visible(self, channel: Channel) -> bool:
        """The bot sees public channels and conversations it belongs to; others don't exist for it."""
        return not channel.is_private or self.bot_user_id in channel.members

    def _im_with(self, user_id: str) -> Channel | None:
        return next((c for c in self.channels.values() if c.is_im and c.user == user_id), None)

    def _open_im(self, user_id: str) -> Channel:
        im = self._im_with(user_id)
        if im is None:
            im = Channel(
                id=self._new_id("D"),
                name="",
                is_private=True,
                is_im=True,
                members={self.bot_user_id, user_id},
                user=user_id,
            )
            self.channels[im.id] = im
        return im

    def _channel(self, ref: str, *, names: bool = False, users: bool = False) -> Channel:
        """Resolve a channel arg (ID; ``#name``/name and user IDs where Slack allows) or channel_not_found."""
        channel = self.channels.get(ref)
        if channel is None and names:
            channel = self.channel_by_name(ref)
        if channel is None and users and ref in self.users and not self.users[ref].deleted:
            channel = self._open_im(ref)
        if channel is None or not self._visible(channel):
            raise SlackError("channel_not_found")
        return channel

    def _member(self, channel: Channel) -> None:
        if self.bot_user_id not in channel.members:
            raise SlackError("not_in_channel")

    def _message(self, channel: Channel, ts: Any) -> Message:
        msg = channel.find(str(ts)) if ts else None
        if msg is None:
            raise SlackError("message_not_found")
        return msg

    def _msg_api(self, msg: Message) -> dict[str, Any]:
        out = msg.to_api(bot_user_id=self.bot_user_id, bot_id=self.bot_id, team_id=self.team_id)
        if msg.thread_ts == msg.ts:
            channel = self.channels[msg.channel]
            replies = [m for m in channel.messages if m.thread_ts == msg.ts and m.ts != msg.ts]
            replies = [m for m in replies if m.ephemeral_to is None]
            if replies:
                out["reply_count"] = len(replies)
                out["latest_reply"] = replies[-1].ts
        return out

    def _chan_api(self, channel: Channel, *, num_members: bool = False) -> dict[str, Any]:
        return channel.to_api(bot_user_id=self.bot_user_id, num_members=num_members)

    def _user(self, user_id: str) -> User:
        user = self.users.get(user_id)
        if user is None:
            raise SlackError("user_not_found")
        return user

    def _content(
        self, args: dict[str, Any], *, max_text: int | None, required: bool = True
    ) -> tuple[str | None, list[dict[str, Any]] | None, list[dict[str, Any]] | None]:
        """Validate text/blocks/attachments of a message; returns them (None when not given)."""
        text = args.get("text")
        text = None if text is None else str(text)
        blocks = args.get("blocks")
        attachments = args.get("attachments")
        markdown = args.get("markdown_text")
        if markdown and (text or blocks):
            raise SlackError("markdown_text_conflict")
        if blocks is not None:
            if not isinstance(blocks, list):
                raise SlackError("invalid_blocks_format", "[ERROR] blocks must be an array")
            problems = validate_blocks(blocks)
            if problems:
                raise SlackError("invalid_blocks", *problems)
        if attachments is not None:
            if not isinstance(attachments, list):
                raise SlackError("invalid_attachments")
            if len(attachments) > 100:
                raise SlackError("too_many_attachments")
        if markdown:
            text = str(markdown)
        if required and not (text or blocks or attachments):
            raise SlackError("no_text")
        if text is not None and max_text is not None and len(text) > max_text:
            raise SlackError("msg_too_long")
        return text, blocks, attachments

    # ---------------------------------------------------------------- auth / users

    def _api_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"args": {k: v for k, v in args.items() if isinstance(v, str)}}

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://fake.slack.com/",
            "team": "Fake Team",
            "user": self.users[self.bot_user_id].name,
            "team_id": self.team_id,
            "user_id": self.bot_user_id,
            "bot_id": self.bot_id,
            "is_enterprise_install": False,
        }

    def _bots_info(self, args: dict[str, Any]) -> dict[str, Any]:
        bot = args.get("bot") or self.bot_id
        if bot != self.bot_id:
            raise SlackError("bot_not_found")
        name = self.users[self.bot_user_id].name
        return {
            "bot": {
                "id": self.bot_id,
                "deleted": False,
                "name": name,
                "updated": 0,
                "app_id": self.app_id,
                "user_id": self.bot_user_id,
                "icons": {},
            }
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        return {"user": self._user(str(args["user"])).to_api(self.team_id)}

    def _users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        members = [u.to_api(self.team_id) for u in self.users.values()]
        page, cursor = _paginate(members, args, default=200)
        return {"members": page, "cache_ts": int(time.time()), "response_metadata": {"next_cursor": cursor}}

    def _users_lookup_by_email(self, args: dict[str, Any]) -> dict[str, Any]:
        email = str(args["email"]).lower()
        user = next((u for u in self.users.values() if (u.email or "").lower() == email), None)
        if user is None:
            raise SlackError("users_not_found")
        return {"user": user.to_api(self.team_id)}

    def _usergroups_list(self, args: dict[str, Any]) -> dict[str, Any]:
        groups = []
        for g in self.usergroups.values():
            item: dict[str, Any] = {"id": g.id, "team_id": self.team_id, "handle": g.handle, "name": g.handle}
            item["user_count"] = len(g.users)
            if args.get("include_users"):
                item["users"] = list(g.users)
            groups.append(item)
        return {"usergroups": groups}

    def _usergroups_users_list(self, args: dict[str, Any]) -> dict[str, Any]:
        group = self.usergroups.get(str(args["usergroup"]))
        if group is None:
            raise SlackError("no_such_subteam")
        return {"users": list(group.users)}

    # ---------------------------------------------------------------- conversations

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args["name"])
        error = _name_error(name)
        if error:
            raise SlackError(error)
        # Slack: an archived channel keeps its name, so it stays taken.
        if self.channel_by_name(name) is not None:
            raise SlackError("name_taken")
        channel = Channel(
            id=self._new_id("C"),
            name=name,
            is_private=bool(args.get("is_private")),
            members={self.bot_user_id},
            # Slack: the token's user (the bot) is the creator; `created` is whole Unix seconds, now.
            creator=self.bot_user_id,
            created=int(time.time()),
        )
        self.channels[channel.id] = channel
        return {"channel": self._chan_api(channel)}

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.is_im or channel.is_mpim:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.archived:
            raise SlackError("is_archived")
        self._member(channel)
        user_ids = _id_list(args["users"])
        if not user_ids:
            raise SlackError("no_user")
        for user_id in user_ids:
            if user_id == self.bot_user_id:
                raise SlackError("cant_invite_self")
            if self._user(user_id).deleted:
                raise SlackError("cant_invite", f"[ERROR] {user_id} is deactivated")
        new = [u for u in user_ids if u not in channel.members]
        if not new:
            raise SlackError("already_in_channel")
        channel.members.update(new)
        return {"channel": self._chan_api(channel)}

    def _set_text_field(self, args: dict[str, Any], field_name: str) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.archived:
            raise SlackError("is_archived")
        self._member(channel)
        value = str(args[field_name])
        if len(value) > 250:
            raise SlackError("too_long")
        setattr(channel, field_name, value)
        return {"channel": self._chan_api(channel)}

    def _conversations_set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text_field(args, "topic")

    def _conversations_set_purpose(self, args: dict[str, Any]) -> dict[str, Any]:
        return self._set_text_field(args, "purpose")

    def _conversations_info(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        return {"channel": self._chan_api(channel, num_members=bool(args.get("include_num_members")))}

    def _conversations_join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.is_im or channel.is_mpim or channel.is_private:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.archived:
            raise SlackError("is_archived")
        out: dict[str, Any] = {}
        if self.bot_user_id in channel.members:
            out = {"warning": "already_in_channel", "response_metadata": {"warnings": ["already_in_channel"]}}
        channel.members.add(self.bot_user_id)
        return {"channel": self._chan_api(channel), **out}

    def _conversations_list(self, args: dict[str, Any]) -> dict[str, Any]:
        types = set(_id_list(args.get("types") or "public_channel"))
        if not types <= {"public_channel", "private_channel", "mpim", "im"}:
            raise SlackError("invalid_types")

        def kind(c: Channel) -> str:
            if c.is_im:
                return "im"
            if c.is_mpim:
                return "mpim"
            return "private_channel" if c.is_private else "public_channel"

        found = [
            c
            for c in self.channels.values()
            if kind(c) in types and self._visible(c) and not (args.get("exclude_archived") and c.archived)
        ]
        page, cursor = _paginate(found, args)
        return {
            "channels": [self._chan_api(c) for c in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        page, cursor = _paginate(sorted(channel.members), args)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    @staticmethod
    def _ts_bound(args: dict[str, Any], key: str, error: str) -> float | None:
        if args.get(key) in (None, ""):
            return None
        try:
            return float(args[key])
        except (TypeError, ValueError) as exc:
            raise SlackError(error) from exc

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        self._member(channel)  # Slack: only user tokens read public channels they are not in
        oldest = self._ts_bound(args, "oldest", "invalid_ts_oldest")
        latest = self._ts_bound(args, "latest", "invalid_ts_latest")
        inclusive = bool(args.get("inclusive"))

        def in_range(msg: Message) -> bool:
            ts = float(msg.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            return latest is None or ts < latest or (ts == latest and inclusive)

        top_level = [
            m
            for m in reversed(channel.messages)
            if m.ephemeral_to is None and (m.thread_ts in (None, m.ts) or m.reply_broadcast) and in_range(m)
        ]
        page, cursor = _paginate(top_level, args)
        return {
            "messages": [self._msg_api(m) for m in page],
            "has_more": bool(cursor),
            "pin_count": len(channel.pins),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        parent = channel.find(str(args["ts"]))
        if parent is None:
            raise SlackError("thread_not_found")
        root = parent.thread_ts or parent.ts
        thread = [m for m in channel.messages if m.ephemeral_to is None and root in (m.ts, m.thread_ts)]
        page, cursor = _paginate(thread, args)
        return {
            "messages": [self._msg_api(m) for m in page],
            "has_more": bool(cursor),
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_open(self, args: dict[str, Any]) -> dict[str, Any]:
        if args.get("channel"):
            channel = self._channel(str(args["channel"]))
            if not (channel.is_im or channel.is_mpim):
                raise SlackError("method_not_supported_for_channel_type")
            return {"channel": self._chan_api(channel) if args.get("return_im") else {"id": channel.id}}
        user_ids = self._open_user_ids(args)
        if len(user_ids) == 1:
            existing = self._im_with(user_ids[0])
            if existing is None and args.get("prevent_creation"):
                return {"no_op": True, "already_open": False, "channel": {}}
            channel = existing or self._open_im(user_ids[0])
        else:
            existing, channel = self._open_mpim(user_ids)
        body = self._chan_api(channel) if args.get("return_im") else {"id": channel.id}
        return {"no_op": existing is not None, "already_open": existing is not None, "channel": body}

    def _open_user_ids(self, args: dict[str, Any]) -> list[str]:
        """conversations.open's `users`, without the bot: 1 to 8 users, none deactivated."""
        user_ids = [u for u in _id_list(args.get("users")) if u != self.bot_user_id]
        if not user_ids:
            raise SlackError("users_list_not_supplied")
        if len(user_ids) > 8:
            raise SlackError("too_many_users")
        for user_id in user_ids:
            if self._user(user_id).deleted:
                raise SlackError("user_disabled")
        return user_ids

    def _open_mpim(self, user_ids: list[str]) -> tuple[Channel | None, Channel]:
        """The existing group DM with exactly these members (or None) and the channel to answer with."""
        members = {self.bot_user_id, *user_ids}
        existing = next((c for c in self.channels.values() if c.is_mpim and c.members == members), None)
        channel = existing or Channel(
            id=self._new_id("C"),
            name="mpdm-" + "--".join(self.users[u].name for u in user_ids) + "-1",
            is_private=True,
            is_mpim=True,
            members=members,
            creator=self.bot_user_id,
        )
        self.channels[channel.id] = channel
        return existing, channel

    def _conversations_archive(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.is_im or channel.is_mpim:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.archived:
            raise SlackError("already_archived")
        if channel.name == "general":
            raise SlackError("cant_archive_general")
        self._member(channel)
        channel.archived = True
        return {}

    def _conversations_rename(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if channel.is_im or channel.is_mpim:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.archived:
            raise SlackError("is_archived")
        self._member(channel)
        name = str(args["name"])
        error = _name_error(name)
        if error:
            raise SlackError(error)
        taken = self.channel_by_name(name)
        if taken is not None and taken is not channel:
            raise SlackError("name_taken")
        if name != channel.name:
            channel.previous_names.append(channel.name)
            channel.name = name
        return {"channel": self._chan_api(channel)}

    # ---------------------------------------------------------------- chat

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]), names=True, users=True)
        if channel.archived:
            raise SlackError("is_archived")
        text, blocks, attachments = self._content(args, max_text=None)
        warnings = []
        if text and len(text) > self.max_post_text:
            # Slack: chat.postMessage truncates text beyond 40,000 characters instead of failing.
            text = text[: self.max_post_text]
            warnings.append("message_truncated")
        thread_ts = args.get("thread_ts") or None
        if thread_ts:
            parent = channel.find(str(thread_ts))
            if parent is not None and parent.thread_ts and parent.thread_ts != parent.ts:
                thread_ts = parent.thread_ts  # Slack threads a reply-to-a-reply under the parent
            if parent is not None and parent.thread_ts is None:
                parent.thread_ts = parent.ts
        msg = Message(
            ts=self._next_ts(),
            channel=channel.id,
            user=self.bot_user_id,
            text=text or "",
            blocks=blocks,
            thread_ts=str(thread_ts) if thread_ts else None,
            attachments=attachments,
            metadata=args.get("metadata") if isinstance(args.get("metadata"), dict) else None,
            reply_broadcast=bool(args.get("reply_broadcast")),
        )
        channel.messages.append(msg)
        out: dict[str, Any] = {"channel": channel.id, "ts": msg.ts, "message": self._msg_api(msg)}
        if warnings:
            out["warning"] = ",".join(warnings)
            out["response_metadata"] = {"warnings": warnings}
        return out

    def _chat_post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]), names=True)
        if channel.archived:
            raise SlackError("is_archived")
        user_id = str(args["user"])
        if user_id not in channel.members:
            raise SlackError("user_not_in_channel")
        text, blocks, attachments = self._content(args, max_text=self.max_ephemeral_text)
        msg = Message(
            ts=self._next_ts(),
            channel=channel.id,
            user=self.bot_user_id,
            text=text or "",
            blocks=blocks,
            thread_ts=args.get("thread_ts") or None,
            attachments=attachments,
            ephemeral_to=user_id,
        )
        channel.messages.append(msg)
        return {"message_ts": msg.ts}

    def _chat_update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        msg = self._message(channel, args["ts"])
        if msg.user != self.bot_user_id:
            raise SlackError("cant_update_message")
        if channel.archived:
            raise SlackError("is_inactive")
        text, blocks, attachments = self._content(args, max_text=self.max_update_text)
        # Slack: omitted blocks/attachments are kept; an empty array removes them.
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks or None
        if attachments is not None:
            msg.attachments = attachments or None
        if isinstance(args.get("metadata"), dict):
            msg.metadata = args["metadata"] or None
        msg.edited = True
        return {"channel": channel.id, "ts": msg.ts, "text": msg.text, "message": self._msg_api(msg)}

    def _chat_delete(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        msg = self._message(channel, args["ts"])
        if msg.user != self.bot_user_id:
            raise SlackError("cant_delete_message")
        channel.messages.remove(msg)
        if msg.ts in channel.pins:
            channel.pins.remove(msg.ts)
        return {"channel": channel.id, "ts": msg.ts}

    def _chat_get_permalink(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        msg = self._message(channel, args["message_ts"])
        link = f"https://fake.slack.com/archives/{channel.id}/p{msg.ts.replace('.', '')}"
        if msg.thread_ts and msg.thread_ts != msg.ts:
            link += f"?thread_ts={msg.thread_ts}&cid={channel.id}"
        return {"channel": channel.id, "permalink": link}

    # ---------------------------------------------------------------- pins / reactions

    def _pins_add(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if not args.get("timestamp"):
            raise SlackError("no_item_specified")
        self._member(channel)
        msg = self._message(channel, args["timestamp"])
        if msg.ts in channel.pins:
            raise SlackError("already_pinned")
        if len(channel.pins) >= 100:
            raise SlackError("too_many_pins")
        channel.pins.append(msg.ts)
        return {}

    def _pins_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        if not args.get("timestamp"):
            raise SlackError("no_item_specified")
        msg = self._message(channel, args["timestamp"])
        if msg.ts not in channel.pins:
            raise SlackError("not_pinned")
        channel.pins.remove(msg.ts)
        return {}

    def _pins_list(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        items = []
        for ts in channel.pins:
            msg = channel.find(ts)
            if msg is not None:
                items.append(
                    {
                        "type": "message",
                        "channel": channel.id,
                        "created": int(float(ts)),
                        "created_by": self.bot_user_id,
                        "message": self._msg_api(msg),
                    }
                )
        return {"items": items}

    def _reaction_target(self, args: dict[str, Any]) -> tuple[Message, str]:
        if not args.get("channel") or not args.get("timestamp"):
            raise SlackError("no_item_specified")
        channel = self._channel(str(args["channel"]))
        if channel.archived:
            raise SlackError("is_archived")
        name = str(args["name"])
        if not _REACTION_NAME.match(name):
            raise SlackError("invalid_name")
        return self._message(channel, args["timestamp"]), name

    def _reactions_add(self, args: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction_target(args)
        users = msg.reactions.setdefault(name, [])
        if self.bot_user_id in users:
            raise SlackError("already_reacted")
        users.append(self.bot_user_id)
        return {}

    def _reactions_remove(self, args: dict[str, Any]) -> dict[str, Any]:
        msg, name = self._reaction_target(args)
        users = msg.reactions.get(name, [])
        if self.bot_user_id not in users:
            raise SlackError("no_reaction")
        users.remove(self.bot_user_id)
        if not users:
            del msg.reactions[name]
        return {}

    # ---------------------------------------------------------------- views

    def _check_view(self, view: Any, *, kinds: tuple[str, ...]) -> dict[str, Any]:
        """Slack answers invalid_arguments (with messages) for a malformed view, not invalid_blocks."""
        if not isinstance(view, dict):
            raise SlackError("invalid_arguments", "[ERROR] view must be a JSON object [json-pointer:/view]")
        if len(json.dumps(view)) > 250_000:
            raise SlackError("view_too_large")
        problems: list[str] = []
        if view.get("type") not in kinds:
            problems.append(f"[ERROR] must be one of {list(kinds)} [json-pointer:/view/type]")
        if view.get("type") == "modal":
            problems += _text_errors(view.get("title"), "/view/title", max_len=24, plain_only=True)
            for key in ("submit", "close"):
                if key in view and view[key] is not None:
                    problems += _text_errors(view[key], f"/view/{key}", max_len=24, plain_only=True)
            has_input = any(isinstance(b, dict) and b.get("type") == "input" for b in view.get("blocks") or [])
            if has_input and not view.get("submit"):
                problems.append("[ERROR] submit is required when an input block is present [json-pointer:/view]")
        problems += validate_blocks(view.get("blocks"), max_blocks=100, ptr="/view/blocks")
        for key, limit in (("callback_id", 255), ("private_metadata", 3000), ("external_id", 255)):
            if len(str(view.get(key) or "")) > limit:
                problems.append(f"[ERROR] must be less than {limit + 1} characters [json-pointer:/view/{key}]")
        if problems:
            raise SlackError("invalid_arguments", *problems)
        return view

    def _exchange_trigger(self, args: dict[str, Any]) -> str:
        trigger = str(args.get("trigger_id") or args.get("interactivity_pointer") or "")
        if not trigger:
            raise SlackError("invalid_arguments", "[ERROR] missing required field: trigger_id")
        if trigger in self._used_triggers:
            raise SlackError("exchanged_trigger_id")  # Slack: a trigger_id opens one view only
        self._used_triggers.add(trigger)
        return trigger

    def _store_view(
        self, method: str, view: dict[str, Any], *, trigger_id: str | None, view_id: str | None = None
    ) -> dict[str, Any]:
        external_id = view.get("external_id")
        if external_id:
            clash = next(
                (v for v in self._open_views.values() if v.get("external_id") == external_id and v["id"] != view_id),
                None,
            )
            if clash is not None:
                raise SlackError("duplicate_external_id")
        view_id = view_id or self._new_id("V")
        previous = self._open_views.get(view_id, {})
        stored = {
            "id": view_id,
            "team_id": self.team_id,
            "app_id": self.app_id,
            "bot_id": self.bot_id,
            "app_installed_team_id": self.team_id,
            "type": view.get("type"),
            "title": view.get("title"),
            "submit": view.get("submit"),
            "close": view.get("close"),
            "blocks": view.get("blocks", []),
            "callback_id": view.get("callback_id", ""),
            "private_metadata": view.get("private_metadata", ""),
            "external_id": external_id or "",
            "state": {"values": {}},
            "hash": hashlib.sha1(f"{view_id}:{time.time_ns()}".encode()).hexdigest()[:20],
            "clear_on_close": bool(view.get("clear_on_close")),
            "notify_on_close": bool(view.get("notify_on_close")),
            "root_view_id": previous.get("root_view_id", view_id),
            "previous_view_id": previous.get("previous_view_id"),
        }
        self._open_views[view_id] = stored
        self.views.append({"method": method, "trigger_id": trigger_id, "view": view, "view_id": view_id})
        return stored

    def _views_open(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args)
        view = self._check_view(args["view"], kinds=("modal",))
        return {"view": self._store_view("views.open", view, trigger_id=trigger)}

    def _views_push(self, args: dict[str, Any]) -> dict[str, Any]:
        trigger = self._exchange_trigger(args)
        view = self._check_view(args["view"], kinds=("modal",))
        return {"view": self._store_view("views.push", view, trigger_id=trigger)}

    def _views_update(self, args: dict[str, Any]) -> dict[str, Any]:
        view = self._check_view(args["view"], kinds=("modal", "home"))
        view_id = args.get("view_id")
        if not view_id and args.get("external_id"):
            view_id = next(
                (v["id"] for v in self._open_views.values() if v.get("external_id") == args["external_id"]),
                None,
            )
        if not view_id and not args.get("external_id"):
            raise SlackError("invalid_arguments", "[ERROR] either view_id or external_id is required")
        current = self._open_views.get(str(view_id)) if view_id else None
        if current is None:
            raise SlackError("not_found")
        if args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view("views.update", view, trigger_id=None, view_id=current["id"])}

    def _views_publish(self, args: dict[str, Any]) -> dict[str, Any]:
        self._user(str(args["user_id"]))
        view = self._check_view(args["view"], kinds=("home",))
        home_id = f"VHOME{args['user_id']}"
        current = self._open_views.get(home_id)
        if current is not None and args.get("hash") and args["hash"] != current["hash"]:
            raise SlackError("hash_conflict")
        return {"view": self._store_view("views.publish", view, trigger_id=None, view_id=home_id)}

    # ---------------------------------------------------------------- files

    def _files_get_upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        length = args["length"]
        if not isinstance(length, int) or length < 0:
            raise SlackError("invalid_arguments", "[ERROR] length must be a non-negative integer")
        file = FakeFile(id=self._new_id("F"), filename=str(args["filename"]), title="", length=length)
        self.files[file.id] = file
        upload_url = f"{self.url.removesuffix('/api/')}/upload/v1/{file.id}"
        return {"upload_url": upload_url, "file_id": file.id}

    def _files_complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args["files"]
        if not isinstance(items, list) or not all(isinstance(i, dict) and i.get("id") for i in items):
            raise SlackError("invalid_arguments", "[ERROR] files must be an array of {id, title}")
        channels = self._share_targets(args)
        tickets = [(self._uploaded_file(item), item) for item in items]
        for file, item in tickets:
            file.title = str(item.get("title") or file.filename)
            file.completed = True
            file.channel_id = channels[0].id if channels else None
            file.channels = [c.id for c in channels]
        text = str(args.get("initial_comment") or "")
        for channel in channels:
            channel.messages.append(
                Message(
                    ts=self._next_ts(),
                    channel=channel.id,
                    user=self.bot_user_id,
                    text=text,
                    thread_ts=args.get("thread_ts") or None,
                    files=[f.id for f, _ in tickets],
                )
            )
        return {"files": [{"id": f.id, "title": f.title} for f, _ in tickets]}

    def _share_targets(self, args: dict[str, Any]) -> list[Channel]:
        targets = _id_list(args.get("channels"))
        if args.get("channel_id"):
            targets.insert(0, str(args["channel_id"]))
        channels = []
        for ref in targets:
            channel = self._channel(ref)
            self._member(channel)  # Slack: sharing files needs membership, even in public channels
            channels.append(channel)
        return channels

    def _uploaded_file(self, item: dict[str, Any]) -> FakeFile:
        """The open ticket for ``item``, refused unless exactly the declared bytes were uploaded."""
        file = self.files.get(str(item["id"]))
        if file is None or file.completed:
            raise SlackError("file_not_found", f"[ERROR] no open upload ticket for {item['id']}")
        if file.content is None:
            raise SlackError("file_not_found", f"[ERROR] no bytes were uploaded for {file.id}")
        if len(file.content) != file.length:
            raise SlackError(
                "file_update_failed",
                f"[ERROR] {file.id}: uploaded {len(file.content)} bytes, declared length {file.length}",
            )
        return file

    def _files_info(self, args: dict[str, Any]) -> dict[str, Any]:
        file = self.files.get(str(args["file"]))
        if file is None or not file.completed:
            raise SlackError("file_not_found")
        return {
            "file": file.to_api(self.bot_user_id),
            "comments": [],
            "response_metadata": {"next_cursor": ""},
        }

    async def _handle_upload(self, request: web.Request) -> web.Response:
        """The upload URL: raw bytes (what slack_sdk sends) or multipart with a ``file``/``filename`` part."""
        file = self.files.get(request.match_info["file_id"])
        if file is None or file.completed:
            return web.Response(status=404, text="file_not_found", content_type="text/plain")
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            part = form.get("file") or form.get("filename")
            if part is None:
                return web.Response(status=400, text="missing file part", content_type="text/plain")
            data = part.file.read() if hasattr(part, "file") else str(part).encode()
        else:
            data = await request.read()
        file.content = bytes(data)
        return web.Response(text=f"OK - {len(data)}", content_type="text/plain")

    # ---------------------------------------------------------------- response_url

    async def _handle_response_url(self, request: web.Request) -> web.Response:
        """Store what Bolt's respond() sent; act on it when the URL was made with a channel context."""
        key = request.match_info["key"]
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        if not isinstance(body, dict):
            return web.Response(status=400, text="invalid_payload")
        uses = self._response_uses.get(key, 0) + 1
        self._response_uses[key] = uses
        if uses > self.response_url_max_uses:
            return web.Response(status=404, text="used_url")  # Slack: at most 5 uses
        if "blocks" in body and validate_blocks(body["blocks"]):
            return web.Response(status=400, text="invalid_blocks")
        if not (body.get("text") or body.get("blocks") or body.get("attachments") or body.get("delete_original")):
            return web.Response(status=400, text="no_text")
        self.responses.append({"key": key, **body})
        self._apply_response(key, body)
        return web.Response(text="ok")

    def _apply_response(self, key: str, body: dict[str, Any]) -> None:
        ctx = self._response_contexts.get(key) or {}
        channel = self.channels.get(ctx.get("channel") or "")
        if channel is None:
            return
        message_ts = ctx.get("message_ts")
        original = channel.find(message_ts) if message_ts else None
        if body.get("delete_original") and original is not None:
            channel.messages.remove(original)
            return
        if body.get("replace_original") and original is not None:
            original.text = str(body.get("text") or "")
            original.blocks = body.get("blocks")
            original.attachments = body.get("attachments")
            original.edited = True
            return
        ephemeral = body.get("response_type") != "in_channel"
        channel.messages.append(
            Message(
                ts=self._next_ts(),
                channel=channel.id,
                user=self.bot_user_id,
                text=str(body.get("text") or ""),
                blocks=body.get("blocks"),
                thread_ts=body.get("thread_ts"),
                attachments=body.get("attachments"),
                ephemeral_to=ctx.get("user") if ephemeral else None,
            )
        )
