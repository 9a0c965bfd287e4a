"""The fake's state and the helpers every method family shares.

Each family of Web API methods (users.py, conversations.py, chat.py, ...) is a mixin on this class;
`FakeSlack` (server.py) puts them together behind one aiohttp server.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

from aiohttp import web

from tests.fakes.slack_api.specs import manifest_scopes
from tests.fakes.slack_api.state import Call, Channel, FakeFile, Message, SlackError, User, Usergroup


class SlackBase:
    """One workspace as Slack holds it (channels, users, messages, views, files) plus the fake's bookkeeping."""

    bot_token: str = "xoxb-test-token"
    app_token: str = "xapp-1-test-token"
    bot_user_id: str = "UBOT"
    bot_id: str = "BBOT"
    team_id: str = "T0TEST"
    app_id: str = "A0FAKEAPP"

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
        self.oauth_scopes: list[str] | None = manifest_scopes()
        self._open_views: dict[str, dict[str, Any]] = {}
        self._used_triggers: set[str] = set()
        self._response_contexts: dict[str, dict[str, str | None]] = {}
        self._response_uses: dict[str, int] = {}
        self._faults: dict[str, deque[tuple[str, Any]]] = {}
        self._windows: dict[str, deque[float]] = {}
        self._upload_refusals: deque[int] = deque()  # HTTP statuses the upload URL answers next (`refuse_upload`)
        self.uploads: list[tuple[str, int]] = []  # (file id, HTTP status) of every POST to an upload URL
        self._ids = itertools.count(1)
        self._last_ts_us = 0
        self._runner: web.AppRunner | None = None
        self._base = ""
        self.add_user(self.bot_user_id, "incident-bot", is_bot=True)

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
        guest: str = "",
    ) -> None:
        """``guest``: "multi" or "single" for a multi- or single-channel guest account."""
        self.users[user_id] = User(user_id, name, is_bot, deleted, real_name, email, guest=guest)

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

    def user_says(self, channel_id: str, user_id: str, text: str, *, thread_ts: str | None = None) -> dict[str, Any]:
        """A person posts in a channel (in the thread of `thread_ts`); returns the `message` event Slack
        would deliver for it."""
        channel = self.channels[channel_id]
        message = Message(ts=self._next_ts(), channel=channel_id, user=user_id, text=text, thread_ts=thread_ts)
        parent = channel.find(thread_ts) if thread_ts else None
        if parent is not None and parent.thread_ts is None:
            parent.thread_ts = parent.ts
        channel.messages.append(message)
        return {
            "type": "message",
            "channel": channel_id,
            "user": user_id,
            "text": text,
            "ts": message.ts,
            "channel_type": "group" if channel.is_private else "channel",
        } | ({"thread_ts": thread_ts} if thread_ts else {})

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
