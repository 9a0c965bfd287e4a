"""pins.add/remove/list and reactions.add/remove/get."""

from __future__ import annotations

import re
from typing import Any

from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.state import Message, SlackError

_REACTION_NAME = re.compile(r"^[a-z0-9_+'-]+(::skin-tone-[2-6])?$")


class PinsAndReactions(SlackBase):
    """Pins and reactions on a message the bot can see."""

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

    def _reactions_get(self, args: dict[str, Any]) -> dict[str, Any]:
        if not args.get("channel") or not args.get("timestamp"):
            raise SlackError("no_item_specified")
        channel = self._channel(str(args["channel"]))
        msg = self._message(channel, args["timestamp"])
        return {"type": "message", "channel": channel.id, "message": self._msg_api(msg)}
