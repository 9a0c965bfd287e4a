"""Just enough of the Slack Web API for the bot, served on loopback: `/api/<method>`, file uploads, response URLs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from bot.demo.served import Served
from bot.demo.slack_workspace import SlackError, StandInChannel, StandInMessage, Workspace
from bot.demo.transcript import Transcript, render_message
from bot.demo.world import BOT_NAME, BOT_TOKEN, BOT_USER, TEAM_ID


class SlackStandIn(Workspace, Served):
    """Just enough of the Slack Web API for the bot, in memory, printing what people would see.

    It checks what matters for the story (channels exist, names are unique, a DM opens) and
    answers `unknown_method` for anything else, so a feature it lacks degrades instead of lying.
    """

    def __init__(self, transcript: Transcript | None = None) -> None:
        super().__init__(transcript)
        self._response_contexts: dict[str, dict[str, str | None]] = {}
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

    # plumbing

    async def _api(self, request: web.Request) -> web.Response:
        try:
            args = await _read_args(request)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.error})
        token = request.headers.get("Authorization", "").removeprefix("Bearer ").strip() or args.pop("token", "")
        if token != BOT_TOKEN:
            return web.json_response({"ok": False, "error": "invalid_auth"})
        handler = self.methods.get(request.match_info["method"])
        if handler is None:
            return web.json_response({"ok": False, "error": "unknown_method"})
        try:
            body = handler(args)
        except SlackError as exc:
            return web.json_response({"ok": False, "error": exc.error})
        except KeyError as exc:
            return web.json_response({"ok": False, "error": "invalid_arguments", "missing": str(exc)})
        return web.json_response({"ok": True, **body})

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
            self.transcript.say(self.where(channel), BOT_NAME, f"added {who}", note="invite")
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

    async def _respond(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read() or b"{}")
        except ValueError:
            return web.Response(status=400, text="invalid_payload")
        ctx = self._response_contexts.get(request.match_info["key"], {})
        channel = self.channels.get(str(ctx.get("channel") or ""))
        self._reply(body, channel=channel, user=str(ctx.get("user") or ""), message_ts=ctx.get("message_ts"))
        return web.Response(text="ok")

    def _reply(self, body: Any, *, channel: StandInChannel | None, user: str, message_ts: str | None) -> None:
        """A reply to a response URL: it replaces the original, or is posted for everyone or only for `user`."""
        text = render_message(str(body.get("text") or ""), body.get("blocks"))
        if channel is None:
            if self.transcript is not None:
                self.transcript.say("(reply)", BOT_NAME, text, note=f"only @{self.name(user)} sees this")
            return
        original = channel.find(message_ts) if body.get("replace_original") else None
        if original is not None:
            original.text, original.blocks = str(body.get("text") or ""), body.get("blocks")
            self._say(channel, text, note="edited")
            return
        public = body.get("response_type") == "in_channel"
        self._add(channel, str(body.get("text") or ""), body.get("blocks"), to=None if public else user)


async def _read_args(request: web.Request) -> dict[str, Any]:
    """A method's arguments as Slack reads them: query, then a form or JSON body; JSON-valued fields decoded."""
    args: dict[str, Any] = dict(request.query)
    raw = await request.read()
    if raw and request.content_type == "application/json":
        try:
            args.update(json.loads(raw))
        except ValueError:
            raise SlackError("invalid_json") from None
    elif raw:
        args.update(parse_qsl(raw.decode("utf-8"), keep_blank_values=True))
    for key in ("blocks", "view", "files"):
        if isinstance(args.get(key), str):
            try:
                args[key] = json.loads(args[key])
            except ValueError:
                raise SlackError(f"invalid_{key}") from None
    return args
