"""`python -m bot demo`: a whole incident, played locally, with the real app and no Slack workspace.

What runs is the bot itself (`bot.wiring.build`, the Bolt app, the HTTP server), fed with signed
requests exactly as Slack sends them. Around it the demo starts, in this process:

- a small Slack stand-in (`SlackStandIn`): the Web API methods the bot calls, response URLs and
  file uploads, printing every message as a chat transcript;
- the services the bot watches: `/health` endpoints (the gateway is down until restarted) and a
  deploy webhook (the generic `webhook` platform) that restarts it;
- a temporary SQLite database, and a bot.yml with short escalation delays.

Then it plays the story: an alert fires, Alice declares from it, the on-call is paged, the
playbook is worked through, /status shows the failure, Alice restarts the gateway, the pages
climb to the team lead and the CTO, the alert clears, Alice resolves, and the post-mortem draft
is written to a file. Features another build lacks are skipped with a note, not a crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import re
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, TypeVar
from urllib.parse import parse_qsl, urlencode

import httpx
from aiohttp import web
from slack_sdk.signature import SignatureVerifier

from bot.config import BotConfig
from bot.exceptions import ConfigError
from bot.settings import Settings
from bot.tasks import TaskTracker

log = logging.getLogger(__name__)
T = TypeVar("T")

SECRET = "demo-signing-secret-not-for-production"
BOT_TOKEN = "xoxb-demo-local-stand-in"
TEAM_ID = "T0DEMO"
BOT_USER = "UBOT"
BOT_NAME = "incident-bot"
PEOPLE = {
    "U0ALICE": "alice",  # SRE, declares and commands
    "U0BOB": "bob",  # on call this week
    "U0DANA": "dana",  # team lead (level 2)
    "U0CHRIS": "chris",  # CTO (level 3)
}
CHANNELS = {"C0GENERAL": "general", "C0INCIDENTS": "incidents", "C0ALERTS": "alerts"}


async def serve(app: web.Application) -> tuple[web.AppRunner, str]:
    """Serve `app` on a free loopback port; returns the runner (to clean up) and the base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


class Served:
    """A local HTTP stand-in: `start` serves `app()` on loopback (`base` is its URL) until `stop`."""

    base = ""
    _runner: web.AppRunner | None = None

    def app(self) -> web.Application:
        raise NotImplementedError

    async def start(self) -> None:
        self._runner, self.base = await serve(self.app())

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


# --- the transcript ----------------------------------------------------------------------------------


MAX_LINES = 14  # of one message in the transcript
_MENTION = re.compile(r"<([@#!])([^>|]+)(?:\|([^>]*))?>")
_LINK = re.compile(r"<(https?://[^>|]+)\|([^>]*)>|<(https?://[^>]+)>")


class Transcript:
    """Prints the conversation as it happens: time since start, where, who, what."""

    def __init__(self, stream: TextIO, names: Callable[[str], str]) -> None:
        self.stream = stream
        self.names = names
        self.started = time.monotonic()

    def _stamp(self) -> str:
        elapsed = time.monotonic() - self.started
        return f"[{int(elapsed // 60):02d}:{elapsed % 60:04.1f}]"

    def plain(self, text: str) -> str:
        """Slack mrkdwn to terminal text: names for IDs, fallbacks for dates, link texts."""

        def mention(match: re.Match[str]) -> str:
            kind, ref, label = match.group(1), match.group(2), match.group(3)
            if kind == "@":
                return "@" + self.names(ref)
            if kind == "#":
                return "#" + (label or self.names(ref))
            if ref.startswith("date^"):
                return label or ref
            return "@" + ref  # <!channel>, <!here>

        def link(match: re.Match[str]) -> str:
            return match.group(2) or match.group(3) or ""

        text = _LINK.sub(link, text)
        text = _MENTION.sub(mention, text)
        return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")

    def say(self, where: str, who: str, text: str, *, note: str = "") -> None:
        lines = [line for line in self.plain(text).splitlines() if line.strip()] or [""]
        if len(lines) > MAX_LINES:
            lines = lines[: MAX_LINES - 1] + [f"… ({len(lines) - MAX_LINES + 1} more lines)"]
        head = f"{self._stamp()} {where} · {who}{f' ({note})' if note else ''}: "
        self.stream.write(head + lines[0] + "\n")
        pad = " " * 10
        for line in lines[1:]:
            self.stream.write(pad + line + "\n")
        self.stream.flush()

    def narrate(self, text: str) -> None:
        self.stream.write(f"\n{self._stamp()} ── {text}\n")
        self.stream.flush()


def render_message(text: str, blocks: list[dict[str, Any]] | None) -> str:
    """What a reader sees: the blocks when there are any (headers, sections, context, buttons), else the text."""
    if not blocks:
        return text
    lines: list[str] = []
    for block in blocks:
        kind = block.get("type")
        if kind == "header":
            lines.append(f"*{block.get('text', {}).get('text', '')}*")
        elif kind == "section":
            if isinstance(block.get("text"), dict):
                lines.append(str(block["text"].get("text", "")))
            for item in block.get("fields") or []:
                lines.append(str(item.get("text", "")))
            accessory = block.get("accessory") or {}
            if accessory.get("type") == "button":
                lines.append(f"[{accessory.get('text', {}).get('text', '')}]")
        elif kind == "context":
            lines.append("  ".join(str(e.get("text", "")) for e in block.get("elements", []) if isinstance(e, dict)))
        elif kind == "actions":
            labels = [e.get("text", {}).get("text", "") for e in block.get("elements", []) if e.get("type") == "button"]
            lines.append(" ".join(f"[{label}]" for label in labels))
        elif kind == "divider":
            lines.append("────")
    return "\n".join(lines) or text


# --- the Slack stand-in ------------------------------------------------------------------------------


@dataclass
class StandInMessage:
    ts: str
    channel: str
    user: str
    text: str
    blocks: list[dict[str, Any]] | None = None
    ephemeral_to: str | None = None

    def to_api(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "message", "ts": self.ts, "user": self.user, "text": self.text}
        if self.user == BOT_USER:
            out["bot_id"] = "BDEMO"
        if self.blocks is not None:
            out["blocks"] = self.blocks
        return out


@dataclass
class StandInChannel:
    id: str
    name: str
    members: set[str] = field(default_factory=set)
    is_private: bool = False
    is_im: bool = False
    user: str | None = None
    topic: str = ""
    messages: list[StandInMessage] = field(default_factory=list)
    pins: list[str] = field(default_factory=list)

    def find(self, ts: Any) -> StandInMessage | None:
        return next((m for m in self.messages if m.ts == str(ts)), None)

    def to_api(self) -> dict[str, Any]:
        if self.is_im:
            return {"id": self.id, "is_im": True, "user": self.user, "created": 0}
        return {
            "id": self.id,
            "name": self.name,
            "is_channel": True,
            "is_private": self.is_private,
            "is_archived": False,
            "is_member": BOT_USER in self.members,
            "created": 0,
            "topic": {"value": self.topic},
            "purpose": {"value": ""},
        }


class SlackError(Exception):
    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


class SlackStandIn(Served):
    """Just enough of the Slack Web API for the bot, in memory, printing what people would see.

    It checks what matters for the story (channels exist, names are unique, a DM opens) and
    answers `unknown_method` for anything else, so a feature it lacks degrades instead of lying.
    """

    def __init__(self, transcript: Transcript | None = None) -> None:
        self.transcript = transcript
        self.channels: dict[str, StandInChannel] = {}
        self.users = {BOT_USER: BOT_NAME, **PEOPLE}
        self.files: dict[str, dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        self._response_contexts: dict[str, dict[str, str | None]] = {}
        self._ids = itertools.count(1)
        self._last_ts = 0
        for channel_id, name in CHANNELS.items():
            members = set(PEOPLE) | ({BOT_USER} if name != "general" else set())
            self.channels[channel_id] = StandInChannel(channel_id, name, members=members)
        self.methods: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
            "auth.test": self._auth_test,
            "bots.info": lambda a: {"bot": {"id": "BDEMO", "user_id": BOT_USER, "name": BOT_NAME}},
            "users.info": self._users_info,
            "users.list": lambda a: {
                "members": [self._user(u) for u in self.users],
                "response_metadata": {"next_cursor": ""},
            },
            "usergroups.list": lambda a: {"usergroups": []},
            "usergroups.users.list": lambda a: {"users": []},
            "conversations.create": self._create,
            "conversations.invite": self._invite,
            "conversations.join": self._join,
            "conversations.setTopic": self._set_topic,
            "conversations.info": lambda a: {"channel": self._channel(a["channel"]).to_api()},
            "conversations.members": lambda a: {"members": sorted(self._channel(a["channel"]).members)},
            "conversations.list": lambda a: {
                "channels": [c.to_api() for c in self.channels.values() if not c.is_im],
                "response_metadata": {"next_cursor": ""},
            },
            "conversations.history": self._history,
            "conversations.open": self._open,
            "chat.postMessage": self._post,
            "chat.postEphemeral": self._post_ephemeral,
            "chat.update": self._update,
            "chat.getPermalink": lambda a: {
                "permalink": f"https://demo.slack.local/archives/{a['channel']}/p{a['message_ts']}"
            },
            "pins.add": self._pin,
            "reactions.add": lambda a: {},
            "views.open": self._view,
            "views.push": self._view,
            "views.update": self._view,
            "files.getUploadURLExternal": self._upload_url,
            "files.completeUploadExternal": self._complete_upload,
        }

    # lifecycle

    def app(self) -> web.Application:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/api/{method}", self._api)
        app.router.add_post("/upload/{file_id}", self._upload)
        app.router.add_post("/respond/{key}", self._respond)
        return app

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/"

    def response_url(self, *, channel: str | None, user: str, message_ts: str | None = None) -> str:
        key = f"r{next(self._ids)}"
        self._response_contexts[key] = {"channel": channel, "user": user, "message_ts": message_ts}
        return f"{self.base}/respond/{key}"

    # reading state

    def name(self, ref: str) -> str:
        if ref in self.users:
            return self.users[ref]
        channel = self.channels.get(ref)
        if channel is not None:
            return channel.name or ref
        return ref

    def channel_by_name(self, name: str) -> StandInChannel | None:
        return next((c for c in self.channels.values() if c.name == name), None)

    def dm(self, user: str) -> StandInChannel | None:
        return next((c for c in self.channels.values() if c.is_im and c.user == user), None)

    def messages(self, channel_id: str) -> list[StandInMessage]:
        channel = self.channels.get(channel_id)
        return list(channel.messages) if channel else []

    # plumbing

    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        args: dict[str, Any] = dict(request.query)
        raw = await request.read()
        if raw:
            if request.content_type == "application/json":
                try:
                    args.update(json.loads(raw))
                except ValueError:
                    return web.json_response({"ok": False, "error": "invalid_json"})
            else:
                args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
        for key in ("blocks", "view", "files"):
            if isinstance(args.get(key), str):
                try:
                    args[key] = json.loads(args[key])
                except ValueError:
                    return web.json_response({"ok": False, "error": f"invalid_{key}"})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or args.pop("token", "")
        if token != BOT_TOKEN:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = self.methods.get(method)
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        try:
            body = handler(args)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.error})
        except KeyError as exc:
            return web.json_response({"ok": False, "error": "invalid_arguments", "missing": str(exc)})
        return web.json_response({"ok": True, **body})

    def _next_ts(self) -> str:
        now = max(int(time.time() * 1_000_000), self._last_ts + 1)
        self._last_ts = now
        return f"{now // 1_000_000}.{now % 1_000_000:06d}"

    def _channel(self, ref: Any) -> StandInChannel:
        ref = str(ref)
        if ref in self.users and ref != BOT_USER:
            return self._open_im(ref)
        channel = self.channels.get(ref) or self.channel_by_name(ref.lstrip("#"))
        if channel is None:
            raise SlackError("channel_not_found")
        return channel

    def _open_im(self, user: str) -> StandInChannel:
        found = self.dm(user)
        if found is None:
            found = StandInChannel(f"D{next(self._ids):09d}", "", members={BOT_USER, user}, is_im=True, user=user)
            self.channels[found.id] = found
        return found

    def _user(self, user_id: str) -> dict[str, Any]:
        name = self.users[user_id]
        return {
            "id": user_id,
            "name": name,
            "real_name": name.title(),
            "is_bot": user_id == BOT_USER,
            "deleted": False,
            "tz": "UTC",
            "profile": {"display_name": name, "real_name": name.title()},
        }

    def _where(self, channel: StandInChannel) -> str:
        return f"DM @{self.name(channel.user or '')}" if channel.is_im else f"#{channel.name}"

    def _say(self, channel: StandInChannel, text: str, *, note: str = "") -> None:
        if self.transcript is not None:
            self.transcript.say(self._where(channel), BOT_NAME, text, note=note)

    # methods

    def _auth_test(self, args: dict[str, Any]) -> dict[str, Any]:
        return {
            "url": "https://demo.slack.local/",
            "team": "Demo",
            "user": BOT_NAME,
            "team_id": TEAM_ID,
            "user_id": BOT_USER,
            "bot_id": "BDEMO",
        }

    def _users_info(self, args: dict[str, Any]) -> dict[str, Any]:
        user = str(args["user"])
        if user not in self.users:
            raise SlackError("user_not_found")
        return {"user": self._user(user)}

    def _create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args["name"])
        if not re.fullmatch(r"[a-z0-9_-]{1,80}", name):
            raise SlackError("invalid_name_specials")
        if self.channel_by_name(name) is not None:
            raise SlackError("name_taken")
        private = str(args.get("is_private", "")).lower() in {"1", "true"}
        channel = StandInChannel(f"C{next(self._ids):09d}", name, members={BOT_USER}, is_private=private)
        self.channels[channel.id] = channel
        if self.transcript is not None:
            self.transcript.say(f"#{name}", BOT_NAME, f"created #{name}", note="new channel")
        return {"channel": channel.to_api()}

    def _invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        users = args["users"]
        users = users if isinstance(users, list) else [u.strip() for u in str(users).split(",") if u.strip()]
        new = [u for u in users if u not in channel.members]
        if not new:
            raise SlackError("already_in_channel")
        channel.members.update(new)
        if self.transcript is not None:
            who = ", ".join("@" + self.name(u) for u in new)
            self.transcript.say(self._where(channel), BOT_NAME, f"added {who}", note="invite")
        return {"channel": channel.to_api()}

    def _join(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        channel.members.add(BOT_USER)
        return {"channel": channel.to_api()}

    def _set_topic(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        if channel.topic != str(args.get("topic", "")):
            channel.topic = str(args.get("topic", ""))
            self._say(channel, channel.topic, note="topic")
        return {"channel": channel.to_api()}

    def _history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        visible = [m.to_api() for m in reversed(channel.messages) if m.ephemeral_to is None]
        return {"messages": visible[: int(args.get("limit") or 100)], "has_more": False}

    def _open(self, args: dict[str, Any]) -> dict[str, Any]:
        users = [u.strip() for u in str(args.get("users", "")).split(",") if u.strip()]
        if len(users) != 1 or users[0] not in self.users:
            raise SlackError("user_not_found")
        return {"channel": self._open_im(users[0]).to_api()}

    def _add(
        self, channel: StandInChannel, text: str, blocks: list[dict[str, Any]] | None, *, to: str | None, note: str = ""
    ) -> StandInMessage:
        """A bot message in the channel (`to`: only that user sees it), printed as people see it."""
        message = StandInMessage(self._next_ts(), channel.id, BOT_USER, text, blocks, ephemeral_to=to)
        channel.messages.append(message)
        if to is not None:
            note = f"only @{self.name(to)} sees this"
        self._say(channel, render_message(text, blocks), note=note)
        return message

    def _post(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        text, blocks = str(args.get("text") or ""), args.get("blocks")
        if not text and not blocks:
            raise SlackError("no_text")
        message = self._add(channel, text, blocks, to=None, note="thread" if args.get("thread_ts") else "")
        return {"channel": channel.id, "ts": message.ts, "message": message.to_api()}

    def _post_ephemeral(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        message = self._add(channel, str(args.get("text") or ""), args.get("blocks"), to=str(args["user"]))
        return {"message_ts": message.ts}

    def _find(self, channel: StandInChannel, ts: Any) -> StandInMessage:
        message = channel.find(ts)
        if message is None:
            raise SlackError("message_not_found")
        return message

    def _update(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        message = self._find(channel, args["ts"])
        before = render_message(message.text, message.blocks).splitlines()
        if "text" in args:
            message.text = str(args["text"] or "")
        if args.get("blocks") is not None:
            message.blocks = args["blocks"] or None
        after = render_message(message.text, message.blocks).splitlines()
        changed = [line for line in after if line not in before]
        if changed:
            self._say(channel, "\n".join(changed[:12]), note="edited")
        return {"channel": channel.id, "ts": message.ts, "text": message.text}

    def _pin(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(args["channel"])
        self._find(channel, args["timestamp"])
        if str(args["timestamp"]) in channel.pins:
            raise SlackError("already_pinned")
        channel.pins.append(str(args["timestamp"]))
        return {}

    def _view(self, args: dict[str, Any]) -> dict[str, Any]:
        view = args["view"]
        view_id = str(args.get("view_id") or f"V{next(self._ids):09d}")
        self.views.append({"view": view, "id": view_id, "trigger_id": args.get("trigger_id")})
        if self.transcript is not None:
            title = (view.get("title") or {}).get("text", "a form")
            self.transcript.say("(form)", BOT_NAME, f"opens the form “{title}”", note="modal")
        return {"view": {**view, "id": view_id, "state": {"values": {}}, "hash": "h"}}

    def _upload_url(self, args: dict[str, Any]) -> dict[str, Any]:
        file_id = f"F{next(self._ids):09d}"
        self.files[file_id] = {"filename": str(args["filename"]), "length": int(args["length"]), "content": None}
        return {"upload_url": f"{self.base}/upload/{file_id}", "file_id": file_id}

    async def _upload(self, request: web.Request) -> web.Response:
        file = self.files.get(request.match_info["file_id"])
        if file is None:
            return web.Response(status=404, text="file_not_found", content_type="text/plain")
        file["content"] = await request.read()
        return web.Response(text=f"OK - {len(file['content'])}", content_type="text/plain")

    def _complete_upload(self, args: dict[str, Any]) -> dict[str, Any]:
        items = args["files"]
        channel = self._channel(args.get("channel_id") or args.get("channels"))
        shared = []
        for item in items:
            file = self.files.get(str(item.get("id")))
            if file is None or file["content"] is None:
                raise SlackError("file_not_found")
            file["title"] = item.get("title") or file["filename"]
            file["channel"] = channel.id
            shared.append({"id": item["id"], "title": file["title"]})
        comment = str(args.get("initial_comment") or "")
        channel.messages.append(StandInMessage(self._next_ts(), channel.id, BOT_USER, comment))
        names = ", ".join(f"📎 {f['title']} ({len(self.files[f['id']]['content'])} bytes)" for f in shared)
        self._say(channel, f"{comment}\n{names}".strip(), note="file")
        return {"files": shared}

    def shared_files(self) -> list[dict[str, Any]]:
        return [f for f in self.files.values() if f.get("channel") and f.get("content") is not None]

    async def _respond(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        ctx = self._response_contexts.get(request.match_info["key"], {})
        user = str(ctx.get("user") or "")
        channel = self.channels.get(str(ctx.get("channel") or ""))
        text = render_message(str(body.get("text") or ""), body.get("blocks"))
        if channel is None:
            if self.transcript is not None:
                self.transcript.say("(reply)", BOT_NAME, text, note=f"only @{self.name(user)} sees this")
            return web.Response(text="ok")
        original = channel.find(ctx.get("message_ts")) if body.get("replace_original") else None
        if original is not None:
            original.text, original.blocks = str(body.get("text") or ""), body.get("blocks")
            self._say(channel, text, note="edited")
            return web.Response(text="ok")
        public = body.get("response_type") == "in_channel"
        self._add(channel, str(body.get("text") or ""), body.get("blocks"), to=None if public else user)
        return web.Response(text="ok")


# --- the services the bot watches ----------------------------------------------------------------------


class LocalServices(Served):
    """Health endpoints and a deploy webhook on loopback: the gateway answers 503 until it is restarted."""

    def __init__(self) -> None:
        self.gateway_up = False
        self.deployments: list[dict[str, Any]] = [
            {"id": "dep-41", "status": "success", "created_at": "2026-11-20T08:40:00Z", "can_rollback": True}
        ]
        self.restarting: dict[str, int] = {}
        self.restarts = 0

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/gateway/health", self._gateway)
        app.router.add_get("/web/health", self._web)
        app.router.add_post("/deploy", self._deploy)
        return app

    async def _gateway(self, _: web.Request) -> web.Response:
        if self.gateway_up:
            return web.json_response({"status": "UP", "components": {"db": {"status": "UP"}}})
        body = {"status": "DOWN", "components": {"db": {"status": "UP"}, "upstream-payments": {"status": "DOWN"}}}
        return web.json_response(body, status=503)

    async def _web(self, _: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def _deploy(self, request: web.Request) -> web.Response:
        body = await request.json()
        action = body.get("action")
        current = self.deployments[0]
        if action == "current":
            return web.json_response({"deployment": current})
        if action == "list":
            return web.json_response({"deployments": self.deployments[: int(body.get("limit") or 10)]})
        if action in ("restart", "rollback"):
            self.restarts += 1
            new: dict[str, Any] = {
                "id": f"dep-{41 + self.restarts}",
                "status": "queued",
                "created_at": datetime.now(UTC).isoformat(),
                "can_rollback": True,
            }
            self.deployments.insert(0, new)
            self.restarting[new["id"]] = 0
            return web.json_response({"deployment": new})
        if action == "status":
            found = next((d for d in self.deployments if d["id"] == body.get("deployment_id")), None)
            if found is None:
                return web.json_response({"error": "no such deployment"}, status=404)
            steps = self.restarting.get(found["id"])
            if steps is not None:
                phases = ["queued", "building", "deploying", "success"]
                found["status"] = phases[min(steps + 1, 3)]
                self.restarting[found["id"]] = steps + 1
                if found["status"] == "success":
                    self.restarting.pop(found["id"], None)
                    self.gateway_up = True
            return web.json_response({"deployment": found})
        return web.json_response({"error": f"unknown action {action!r}"}, status=400)


# --- talking to the bot like Slack does -------------------------------------------------------------------


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
        where = self.slack._where(channel) if channel else message.channel
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


def find_button(message: StandInMessage, label: str) -> tuple[dict[str, Any] | None, str]:
    for block in message.blocks or []:
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in elements:
            text = str((element.get("text") or {}).get("text", ""))
            if element.get("type") == "button" and text.lower().startswith(label.lower()):
                return element, str(block.get("block_id") or "b")
    return None, ""


def alert_body(*, status: str) -> dict[str, Any]:
    """A notification as Alertmanager 0.25 sends it (webhook version 4)."""
    labels = {"alertname": "ServiceDown", "service": "gateway", "severity": "critical", "instance": "gateway-1:8080"}
    alert = {
        "status": status,
        "labels": labels,
        "annotations": {
            "summary": "Checkout API returns 502 on gateway",
            "description": "gateway /health has failed for 2 minutes; 38% of checkout requests fail",
        },
        "startsAt": "2026-11-20T08:58:30.000000000Z",
        "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else datetime.now(UTC).isoformat(),
        "generatorURL": "http://prometheus.local:9090/graph?g0.expr=up%7Bjob%3D%22gateway%22%7D+%3D%3D+0",
        "fingerprint": "5d0c1a2b3c4d5e6f",
    }
    return {
        "receiver": "incident-bot",
        "status": status,
        "alerts": [alert],
        "groupLabels": {"alertname": "ServiceDown"},
        "commonLabels": labels,
        "commonAnnotations": alert["annotations"],
        "externalURL": "http://alertmanager.local:9093",
        "version": "4",
        "groupKey": '{}:{alertname="ServiceDown"}',
        "truncatedAlerts": 0,
    }


def demo_config(services_url: str, *, escalation_after: tuple[int, int, int]) -> BotConfig:
    first, second, third = escalation_after
    return BotConfig.model_validate(
        {
            "channels": {"announcements": "C0INCIDENTS", "alerts": "C0ALERTS"},
            "services": {
                "gateway": {
                    "health_url": f"{services_url}/gateway/health",
                    "timeout": "2s",
                    "platform": "webhook",
                    "webhook": {"url": f"{services_url}/deploy"},
                    "description": "public API gateway (checkout, accounts)",
                },
                "web": {"health_url": f"{services_url}/web/health", "timeout": "2s"},
            },
            "oncall": {
                "timezone": "UTC",
                "rotation": {"period": "weekly", "handoff": "monday 09:00", "users": ["U0BOB"]},
            },
            "escalation": {
                "stop_on": "resolve",
                "levels": [
                    {"name": "On-call engineer", "after": f"{first}s", "notify": ["oncall"]},
                    {"name": "Team lead", "after": f"{second}s", "notify": ["U0DANA"]},
                    {"name": "CTO", "after": f"{third}s", "notify": ["U0CHRIS"]},
                ],
            },
            "permissions": {"restart": ["U0ALICE"], "rollback": ["U0ALICE"]},
        }
    )


# --- the story ------------------------------------------------------------------------------------------


async def wait_for(check: Callable[[], T], *, within: float, step: float = 0.1) -> T:
    """Poll `check` until it answers something truthy (returned) or `within` seconds pass (its last answer)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if found := check():
            return found
        await asyncio.sleep(step)
    return check()


async def run_demo(
    settings: Settings,
    *,
    output: Path,
    pace: float = 0.8,
    stream: TextIO | None = None,
    escalation_after: tuple[int, int, int] = (0, 4, 8),
    keep: Path | None = None,
) -> int:
    """Play the incident; returns 0 when it ran to the end (the post-mortem is at `output`).

    `keep`: the demo's SQLite database is written there and kept (not deleted with the temporary
    folder), so `python -m bot postmortem INC-1` can be tried on it afterwards.
    """
    if keep is not None and await asyncio.to_thread(keep.exists):
        raise ConfigError(f"demo --keep: {keep} exists already: remove it or name another file")
    out = stream or sys.stdout
    root = logging.getLogger()
    old_level = root.level
    root.setLevel(logging.WARNING)  # the transcript is the output; the bot's own logs would drown it
    try:
        with tempfile.TemporaryDirectory(prefix="incident-bot-demo-") as tmp:
            return await _play(
                settings, Path(tmp), output=output, pace=pace, out=out, escalation_after=escalation_after, keep=keep
            )
    finally:
        root.setLevel(old_level)


async def _play(
    user_settings: Settings,
    tmp: Path,
    *,
    output: Path,
    pace: float,
    out: TextIO,
    escalation_after: tuple[int, int, int],
    keep: Path | None = None,
) -> int:
    from bot import wiring
    from bot.server import build_web_app

    database = keep if keep is not None else tmp / "demo.db"
    slack = SlackStandIn()
    transcript = Transcript(out, slack.name)
    slack.transcript = transcript
    services = LocalServices()
    await slack.start()
    await services.start()
    settings = Settings.load(
        slack_bot_token=BOT_TOKEN,
        slack_signing_secret=SECRET,
        slack_app_token=None,
        slack_api_url=slack.api_url,
        database_url=f"sqlite:///{database}",
        bot_config=tmp / "bot.yml",
        playbooks_dir=_playbooks_dir(user_settings),
        alerts_token=None,
        railway_token=None,
        vercel_token=None,
        config=demo_config(services.base, escalation_after=escalation_after),
        _env_file=None,
    )
    out.write(
        "incident-bot demo: one incident, start to finish, against a local Slack stand-in.\n"
        f"  database  {database} ({'kept' if keep is not None else 'temporary'})\n"
        f"  services  gateway {services.base}/gateway/health (down), web {services.base}/web/health (up)\n"
        f"  people    alice (SRE), bob (on call), dana (team lead), chris (CTO)\n"
        f"  pages     level 1 at +{escalation_after[0]}s, level 2 at +{escalation_after[1]}s, "
        f"level 3 at +{escalation_after[2]}s (15 and 30 minutes in bot.example.yml)\n"
    )
    deps, app = wiring.build(settings)
    _quicken(deps)
    runner = None
    watch = TaskTracker()
    driver: Driver | None = None
    try:
        await wiring.start(deps)
        runner, bot_url = await serve(build_web_app(deps, app))
        watch.install()
        driver = Driver(bot_url=bot_url, slack=slack, transcript=transcript, watch=watch)
        story = Story(deps=deps, slack=slack, services=services, driver=driver, transcript=transcript, pace=pace)
        ok = await story.play()
        written = await story.write_postmortem(output)
        transcript.narrate(
            f"Done. The post-mortem draft is in {output}" if written else "Done, but no post-mortem could be written."
        )
        out.write(story.summary())
        if keep is not None:
            out.write(
                f"The demo's database is kept in {keep}: try\n"
                f"  DATABASE_URL=sqlite:///{keep} python -m bot postmortem INC-1 --format html -o inc-1.html\n"
            )
        return 0 if ok and written else 1
    finally:
        watch.uninstall()
        if driver is not None:
            await driver.close()
        if runner is not None:
            await runner.cleanup()
        await wiring.stop(deps)
        await services.stop()
        await slack.stop()


def _playbooks_dir(settings: Settings) -> Path:
    """PLAYBOOKS_DIR when it exists, else the playbooks shipped next to the code (a source checkout)."""
    if Path(settings.playbooks_dir).is_dir():
        return Path(settings.playbooks_dir)
    shipped = Path(__file__).resolve().parents[2] / "playbooks"
    return shipped if shipped.is_dir() else Path(settings.playbooks_dir)


def _quicken(deps: Any) -> None:
    """Deploys in the demo finish in a second or two: poll them (and re-check health) more often."""
    ops = deps.services.get("ops")  # bot.ops.runtime.OpsRuntime, when ops is wired
    if ops is not None:
        ops.poll_interval, ops.health_interval, ops.heartbeat = 0.3, 0.3, 2.0


@dataclass
class Story:
    deps: Any
    slack: SlackStandIn
    services: LocalServices
    driver: Driver
    transcript: Transcript
    pace: float
    skipped: list[str] = field(default_factory=list)

    async def pause(self, factor: float = 1.0) -> None:
        if self.pace > 0:
            await asyncio.sleep(self.pace * factor)

    def skip(self, what: str) -> None:
        self.skipped.append(what)
        self.transcript.narrate(f"(skipped: {what})")

    def last_with_button(self, channel: str, label: str, *, user: str | None = None) -> StandInMessage | None:
        """The latest message in `channel` with that button (`user`: also ephemeral ones only they see)."""
        for message in reversed(self.slack.messages(channel)):
            if message.ephemeral_to in (None, user) and find_button(message, label)[0] is not None:
                return message
        return None

    def paged(self, user: str) -> bool:
        dm = self.slack.dm(user)
        return dm is not None and any(
            find_button(m, "Acknowledge")[0] is not None or "Paged" in m.text for m in dm.messages
        )

    async def play(self) -> bool:
        t = self.transcript
        t.narrate("Prometheus notices the gateway is down; Alertmanager posts the alert to the bot.")
        response = await self.driver.alert(alert_body(status="firing"))
        if response.status_code != 200:
            t.narrate(f"the alert webhook answered {response.status_code}: {response.text}")
            return False
        await self.pause()

        t.narrate("Alice sees the alert in #alerts and declares an incident from it.")
        alert = self.last_with_button("C0ALERTS", "Declare incident")
        declared = False
        if alert is not None and await self.driver.click("U0ALICE", alert, "Declare incident"):
            if self.slack.views:
                await self.pause(0.5)
                await self.driver.submit("U0ALICE", self.slack.views[-1]["view"])
                declared = True
        if not declared:
            t.narrate("(no Declare button: declaring with the slash command instead)")
            await self.driver.command(
                "U0ALICE", "C0GENERAL", "/incident", "declare P1 service:gateway Checkout API returns 502"
            )
        incident = await self._incident()
        if incident is None:
            t.narrate("no incident was declared; stopping here")
            return False
        channel = incident.channel_id or "C0GENERAL"
        await self.pause()

        escalates = "escalator" in self.deps.services
        if escalates:
            t.narrate("Level 1: bob is on call this week, so the bot pages him (a DM and a mention).")
            if not await wait_for(lambda: self.paged("U0BOB"), within=15):
                t.narrate("(bob was not paged within 15 s)")
        else:
            self.skip("paging (escalation is not installed in this build)")

        ops = "ops" in self.deps.services
        if ops:
            t.narrate("Bob checks every service's health endpoint at once.")
            response = await self.driver.command("U0BOB", channel, "/status", "")
            if response.status_code == 404:
                ops = False
        if not ops:
            self.skip("/status and /restart (ops is not installed in this build)")
        await self.pause()

        await self._playbook_steps(channel)

        if escalates:
            t.narrate("Nobody has resolved it yet: the team lead is paged (level 2).")
            await wait_for(lambda: self.paged("U0DANA"), within=20)
            await self.pause(0.5)

        if not ops:
            t.narrate("The logs show a stuck connection pool. Someone restarts the gateway by hand.")
            self.services.gateway_up = True
        else:
            t.narrate("The logs show a stuck connection pool. Alice restarts the gateway (bot.yml allows her to).")
            await self.driver.command("U0ALICE", channel, "/restart", "gateway")
            confirm = await wait_for(lambda: self.last_with_button(channel, "Confirm", user="U0ALICE"), within=10)
            if confirm is not None:
                await self.pause(0.5)
                await self.driver.click("U0ALICE", confirm, "Confirm")
                await wait_for(lambda: self.services.gateway_up, within=30)
                await self.driver.settle()
            else:
                self.skip("the restart confirmation did not appear")
                self.services.gateway_up = True
        await self.pause()

        if escalates:
            t.narrate("Still open after the last delay: the CTO is paged too (level 3).")
            await wait_for(lambda: self.paged("U0CHRIS"), within=20)
            dm = self.slack.dm("U0BOB")
            page = self.last_with_button(dm.id, "Acknowledge") if dm else None
            if page is not None:
                t.narrate("Bob acknowledges his page.")
                await self.driver.click("U0BOB", page, "Acknowledge")
            await self.pause()

        t.narrate("The gateway answers again. Alice posts a status update.")
        if ops:
            await self.driver.command("U0ALICE", channel, "/status", "gateway")
        await self.driver.command(
            "U0ALICE", channel, "/incident", "update monitoring Gateway restarted; checkout errors back to 0.1%"
        )
        await self.pause()

        t.narrate("Alice writes down what they found, for the post-mortem.")
        await self.driver.command(
            "U0ALICE", channel, "/incident", "note Root cause: connection pool leak in gateway v2.3"
        )
        await self.driver.command(
            "U0ALICE", channel, "/incident", "action Alert on connection pool exhaustion before it takes checkout down"
        )
        await self.pause()

        t.narrate("Alertmanager sends the resolved notification; the bot offers to resolve the incident.")
        await self.driver.alert(alert_body(status="resolved"))
        offer = self.last_with_button(channel, "Resolve INC")
        if offer is not None:
            await self.pause(0.5)
            await self.driver.click("U0ALICE", offer, "Resolve INC")
        else:
            await self.driver.command(
                "U0ALICE", channel, "/incident", "resolve Gateway restarted; connection pool leak"
            )
        incident = await self._incident()
        if incident is None or incident.is_open:
            t.narrate("the incident is still open; resolving with the slash command")
            await self.driver.command("U0ALICE", channel, "/incident", "resolve Gateway restarted")
            incident = await self._incident()
        return incident is not None and not incident.is_open

    async def _playbook_steps(self, channel: str) -> None:
        if self.deps.services.get("playbooks") is None:
            self.skip("playbook steps (playbooks are not installed in this build)")
            return
        message = self.last_with_button(channel, "Done")
        if message is None:
            self.skip("playbook steps (no playbook was started for this incident)")
            return
        self.transcript.narrate("The service-down playbook guides them: Bob ticks off the first steps.")
        for _ in range(3):
            message = self.last_with_button(channel, "Done")
            if message is None:
                break
            await self.driver.click("U0BOB", message, "Done")
            await self.pause(0.5)

    async def _incident(self) -> Any:
        from sqlmodel import col, select

        from bot.incidents.models import Incident

        async with self.deps.db.session() as session:
            result = await session.exec(select(Incident).order_by(col(Incident.id).desc()))
            return result.first()

    async def write_postmortem(self, output: Path) -> bool:
        """The draft the bot shared in the channel; else rendered from the database like the CLI does."""
        files = await wait_for(self.slack.shared_files, within=10 if "postmortem" in self.deps.services else 0)
        await asyncio.to_thread(output.parent.mkdir, parents=True, exist_ok=True)
        if files:
            await asyncio.to_thread(output.write_bytes, files[-1]["content"])
            return True
        incident = await self._incident()
        if incident is None:
            return False
        await asyncio.to_thread(output.write_text, await self._render(incident), encoding="utf-8")
        return True

    async def _render(self, incident: Any) -> str:
        """The post-mortem as `python -m bot postmortem` renders it; the bare timeline if that fails."""
        from bot.postmortem import service as postmortem
        from bot.timeline import service as timeline

        try:
            async with self.deps.db.session() as session:
                return postmortem.render(await postmortem.build(session, incident_id=incident.id))
        except Exception as exc:
            log.warning("could not render the post-mortem (%s); writing the timeline instead", exc)
        async with self.deps.db.session() as session:
            events = await timeline.events(session, incident_id=incident.id)
        lines = [f"# {incident.ref}: {incident.title}", "", "## Timeline", ""]
        lines += [f"- {e.at:%H:%M:%S} UTC — {e.kind}: {e.text}" for e in events]
        return "\n".join(lines) + "\n"

    def summary(self) -> str:
        lines = ["", "What you saw, and where it lives:"]
        lines.append("  alerts      POST /alerts/alertmanager and /alerts/grafana (bot/alerts)")
        lines.append("  incidents   /incident declare|update|resolve, buttons and forms (bot/incidents)")
        for name, what in (
            ("escalator", "  paging      levels from bot.yml escalation, exactly once (bot/escalation)"),
            ("playbooks", "  playbooks   YAML runbooks in PLAYBOOKS_DIR (bot/playbooks)"),
            ("ops", "  ops         /status, /restart, /rollback (bot/ops, bot/platforms)"),
            ("postmortem", "  post-mortem drafted on resolve (bot/postmortem)"),
        ):
            if name in self.deps.services:
                lines.append(what)
        if self.skipped:
            lines.append("Skipped in this build: " + "; ".join(self.skipped))
        lines.append(
            "Next: copy bot.example.yml to bot.yml, create the Slack app from manifest.yml, run `python -m bot check`."
        )
        return "\n".join(lines) + "\n"
