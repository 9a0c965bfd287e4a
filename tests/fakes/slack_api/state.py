"""What the fake stores: plain dataclasses, so tests can assert on them directly."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError


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
    guest: str = ""  # "multi" (multi-channel guest) or "single" (single-channel guest)
    tz_offset: int | None = None  # as Slack says it (seconds, now); None: worked out from `tz`

    def offset(self) -> int | None:
        if self.tz_offset is not None or not self.tz:
            return self.tz_offset
        try:
            return int((datetime.now(ZoneInfo(self.tz)).utcoffset() or timedelta(0)).total_seconds())
        except (ZoneInfoNotFoundError, ValueError):
            return None

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
            **({"tz_offset": offset} if (offset := self.offset()) is not None else {}),
            "is_admin": False,
            "is_owner": False,
            "is_primary_owner": False,
            # As Slack says it: every guest is restricted, a single-channel guest ultra-restricted too.
            "is_restricted": bool(self.guest),
            "is_ultra_restricted": self.guest == "single",
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
