"""chat.*: postMessage, postEphemeral, update, delete, getPermalink."""

from __future__ import annotations

from typing import Any

from tests.fakes.slack_api.base import SlackBase
from tests.fakes.slack_api.blocks import blocks_text_length, validate_blocks
from tests.fakes.slack_api.state import Message, SlackError


class Chat(SlackBase):
    """Posting, editing and deleting messages; every text/blocks/attachments goes through `_content`."""

    # Slack truncates chat.postMessage text beyond 40,000 chars (changelog 2018-04); the spec
    # gives chat.update msg_too_long at 4,000 and chat.postEphemeral msg_too_long.
    max_post_text: int = 40_000
    max_update_text: int = 4_000
    max_ephemeral_text: int = 40_000
    # Slack refuses blocks too long in total with msg_blocks_too_long and documents no threshold: its
    # markdown block's page gives 12,000 characters for all of a message's markdown blocks, and reports
    # (slackapi/bolt-js#2509, #2867) saw refusals from about 11,300 characters of text. The fake sums every
    # `text` string of the blocks and refuses above 11,000, below any of those. chat.update's spec lists
    # no msg_blocks_too_long, only invalid_blocks: that is what it answers there (a test may change it).
    max_blocks_text: int = 11_000
    update_blocks_too_long: str = "invalid_blocks"

    def _content(
        self, args: dict[str, Any], *, max_text: int | None, required: bool = True, too_long: str | None = None
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
            if too_long and blocks_text_length(blocks) > self.max_blocks_text:
                raise SlackError(too_long)
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

    def _chat_post_message(self, args: dict[str, Any]) -> dict[str, Any]:
        channel = self._channel(str(args["channel"]), names=True, users=True)
        if channel.archived:
            raise SlackError("is_archived")
        text, blocks, attachments = self._content(args, max_text=None, too_long="msg_blocks_too_long")
        metadata = _metadata(args.get("metadata"))
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
            metadata=metadata,
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
        text, blocks, attachments = self._content(
            args, max_text=self.max_update_text, too_long=self.update_blocks_too_long
        )
        # Slack: omitted blocks/attachments are kept; an empty array removes them.
        if text is not None:
            msg.text = text
        if blocks is not None:
            msg.blocks = blocks or None
        if attachments is not None:
            msg.attachments = attachments or None
        if args.get("metadata") is not None:
            msg.metadata = _metadata(args["metadata"])
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


def _metadata(value: Any) -> dict[str, Any] | None:
    """Message metadata as Slack takes it: an object with a string `event_type` and an object `event_payload`
    (invalid_metadata_format when it is no object, invalid_metadata_schema when those are missing)."""
    if value is None or value == {}:
        return None
    if not isinstance(value, dict):
        raise SlackError("invalid_metadata_format")
    if not isinstance(value.get("event_type"), str) or not isinstance(value.get("event_payload"), dict):
        raise SlackError("invalid_metadata_schema")
    return value
