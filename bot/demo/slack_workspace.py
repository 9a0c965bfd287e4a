"""What the Slack stand-in holds: channels and their messages, people, uploaded files and opened forms.

`Workspace` is the state and the few rules the story relies on (a DM opens once, a channel is found
by ID or name); `SlackStandIn` (slack_stand_in.py) serves it as the Web API. Every message the bot
leaves here is printed to the transcript as people would see it.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from typing import Any

from bot.demo.transcript import Transcript, render_message
from bot.demo.world import BOT_NAME, BOT_USER, CHANNELS, PEOPLE


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


def find_button(message: StandInMessage, label: str) -> tuple[dict[str, Any] | None, str]:
    """The button whose text starts with `label` (any case) and its block's ID; `(None, "")` when there is none."""
    for block in message.blocks or []:
        elements = block.get("elements", []) if block.get("type") == "actions" else [block.get("accessory") or {}]
        for element in elements:
            text = str((element.get("text") or {}).get("text", ""))
            if element.get("type") == "button" and text.lower().startswith(label.lower()):
                return element, str(block.get("block_id") or "b")
    return None, ""


class Workspace:
    """The stand-in's state: the demo's channels (and DMs as they open), people, files and forms."""

    def __init__(self, transcript: Transcript | None = None) -> None:
        self.transcript = transcript
        self.channels: dict[str, StandInChannel] = {}
        self.users = {BOT_USER: BOT_NAME, **PEOPLE}
        self.files: dict[str, dict[str, Any]] = {}
        self.views: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        self._last_ts = 0
        for channel_id, name in CHANNELS.items():
            members = set(PEOPLE) | ({BOT_USER} if name != "general" else set())
            self.channels[channel_id] = StandInChannel(channel_id, name, members=members)

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

    def shared_files(self) -> list[dict[str, Any]]:
        return [f for f in self.files.values() if f.get("channel") and f.get("content") is not None]

    def where(self, channel: StandInChannel) -> str:
        """How the transcript names a conversation: `#name`, or `DM @person`."""
        return f"DM @{self.name(channel.user or '')}" if channel.is_im else f"#{channel.name}"

    # changing state (for the Web API methods)

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

    def _say(self, channel: StandInChannel, text: str, *, note: str = "") -> None:
        if self.transcript is not None:
            self.transcript.say(self.where(channel), BOT_NAME, text, note=note)

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

    def _find(self, channel: StandInChannel, ts: Any) -> StandInMessage:
        message = channel.find(ts)
        if message is None:
            raise SlackError("message_not_found")
        return message
