"""The demo's output: the conversation printed as it happens, Slack's mrkdwn and blocks as people read them."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from typing import Any, TextIO

from bot.slack.text import unescape

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
        return unescape(text)

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


def _header(block: dict[str, Any]) -> list[str]:
    return [f"*{block.get('text', {}).get('text', '')}*"]


def _section(block: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    if isinstance(block.get("text"), dict):
        lines.append(str(block["text"].get("text", "")))
    lines.extend(str(item.get("text", "")) for item in block.get("fields") or [])
    accessory = block.get("accessory") or {}
    if accessory.get("type") == "button":
        lines.append(f"[{accessory.get('text', {}).get('text', '')}]")
    return lines


def _context(block: dict[str, Any]) -> list[str]:
    return ["  ".join(str(e.get("text", "")) for e in block.get("elements", []) if isinstance(e, dict))]


def _actions(block: dict[str, Any]) -> list[str]:
    labels = [e.get("text", {}).get("text", "") for e in block.get("elements", []) if e.get("type") == "button"]
    return [" ".join(f"[{label}]" for label in labels)]


def _divider(block: dict[str, Any]) -> list[str]:
    return ["────"]


_BLOCKS: dict[str, Callable[[dict[str, Any]], list[str]]] = {
    "header": _header,
    "section": _section,
    "context": _context,
    "actions": _actions,
    "divider": _divider,
}


def render_message(text: str, blocks: list[dict[str, Any]] | None) -> str:
    """What a reader sees: the blocks when there are any (headers, sections, context, buttons), else the text.

    Other kinds of block (inputs, images) are left out, as a glance at the channel would.
    """
    if not blocks:
        return text
    lines: list[str] = []
    for block in blocks:
        render = _BLOCKS.get(str(block.get("type")))
        if render is not None:
            lines.extend(render(block))
    return "\n".join(lines) or text
