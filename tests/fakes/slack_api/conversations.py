"""conversations.*: create, invite, topic/purpose, info, join, list, members, history, replies, open,
archive, rename."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from tests.fakes.slack_api.args import id_list, name_error, paginate
from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.state import Channel, Message, SlackError


class Conversations(SlackBase):
    """Channels, IMs and group DMs: their lifecycle, members and history."""

    def _conversations_create(self, args: dict[str, Any]) -> dict[str, Any]:
        name = str(args["name"])
        error = name_error(name)
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

    def _channel_to_change(self, args: dict[str, Any]) -> Channel:
        """A channel (not a DM), not archived, with the bot in it: what invite and rename refuse otherwise."""
        channel = self._channel(str(args["channel"]))
        if channel.is_im or channel.is_mpim:
            raise SlackError("method_not_supported_for_channel_type")
        if channel.archived:
            raise SlackError("is_archived")
        self._member(channel)
        return channel

    def _conversations_invite(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel_to_change(args)
        user_ids = id_list(args["users"])
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
        types = set(id_list(args.get("types") or "public_channel"))
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
        page, cursor = paginate(found, args)
        return {
            "channels": [self._chan_api(c) for c in page],
            "response_metadata": {"next_cursor": cursor},
        }

    def _conversations_members(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        page, cursor = paginate(sorted(channel.members), args)
        return {"members": page, "response_metadata": {"next_cursor": cursor}}

    @staticmethod
    def _ts_bound(args: dict[str, Any], key: str, error: str) -> float | None:
        if args.get(key) in (None, ""):
            return None
        try:
            return float(args[key])
        except (TypeError, ValueError) as exc:
            raise SlackError(error) from exc

    def _in_range(self, args: dict[str, Any]) -> Callable[[Message], bool]:
        """`oldest`, `latest` and `inclusive` of history and replies: whether a message is in the window."""
        oldest = self._ts_bound(args, "oldest", "invalid_ts_oldest")
        latest = self._ts_bound(args, "latest", "invalid_ts_latest")
        inclusive = bool(args.get("inclusive"))

        def in_range(msg: Message) -> bool:
            ts = float(msg.ts)
            if oldest is not None and (ts < oldest or (ts == oldest and not inclusive)):
                return False
            return latest is None or ts < latest or (ts == latest and inclusive)

        return in_range

    def _conversations_history(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]))
        self._member(channel)  # Slack: only user tokens read public channels they are not in
        self._history_scope(channel)
        in_range = self._in_range(args)
        top_level = [
            m
            for m in reversed(channel.messages)
            if m.ephemeral_to is None and (m.thread_ts in (None, m.ts) or m.reply_broadcast) and in_range(m)
        ]
        page, cursor = paginate(top_level, args)
        messages = [self._msg_api(m) for m in page]
        if not args.get("include_all_metadata"):  # Slack: message metadata is returned only when asked for
            for message in messages:
                message.pop("metadata", None)
        return {
            "messages": messages,
            "has_more": bool(cursor),
            "pin_count": len(channel.pins),
            "response_metadata": {"next_cursor": cursor},
        }

    def _history_scope(self, channel: Channel) -> None:
        """Slack: reading a DM's history needs `im:history` (a group DM's `mpim:history`), else missing_scope."""
        needed = "im:history" if channel.is_im else "mpim:history" if channel.is_mpim else None
        if needed is not None and self.oauth_scopes is not None and needed not in self.oauth_scopes:
            raise SlackError("missing_scope")

    def _conversations_replies(self, args: dict[str, Any]) -> dict[str, Any]:
        """A thread, oldest first, found by its parent's ts or any reply's; a message with no replies is
        its own thread. Slack puts the parent first on the first page, whatever `oldest` and `latest` say."""
        channel = self._channel(str(args["channel"]))
        found = channel.find(str(args["ts"]))
        if found is None:
            raise SlackError("thread_not_found")
        root = found.thread_ts or found.ts
        in_range = self._in_range(args)
        thread = [m for m in channel.messages if m.ephemeral_to is None and root in (m.ts, m.thread_ts)]
        parent, replies = thread[:1], [m for m in thread[1:] if in_range(m)]
        page, cursor = paginate(replies, args)
        if not args.get("cursor"):
            page = parent + page
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
        user_ids = [u for u in id_list(args.get("users")) if u != self.bot_user_id]
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
        channel = self._channel_to_change(args)
        name = str(args["name"])
        error = name_error(name)
        if error:
            raise SlackError(error)
        taken = self.channel_by_name(name)
        if taken is not None and taken is not channel:
            raise SlackError("name_taken")
        if name != channel.name:
            channel.previous_names.append(channel.name)
            channel.name = name
        return {"channel": self._chan_api(channel)}
