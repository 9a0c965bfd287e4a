"""The incident's channel: its name, and its creation when a name is taken already."""

from __future__ import annotations

import re
import secrets
import unicodedata

from bot.deps import Deps
from bot.exceptions import ChannelNameTaken, ChatError
from bot.incidents.adopt import own_channel
from bot.incidents.models import Incident
from bot.incidents.ports import Channel

MAX_CHANNEL_NAME = 80


def slugify(text: str, *, max_length: int) -> str:
    """ASCII, lowercase, dashes: what Slack allows in a channel name."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return slug[:max_length].rstrip("-")


def channel_name(number: int, title: str, *, suffix: str = "") -> str:
    prefix = f"inc-{number}"
    room = MAX_CHANNEL_NAME - len(prefix) - len(suffix) - 1
    slug = slugify(title, max_length=max(room, 0))
    name = f"{prefix}-{slug}" if slug else prefix
    return f"{name}{suffix}"


async def create_channel(deps: Deps, incident: Incident, *, adopt: bool) -> Channel:
    """A channel named after the incident, with a suffix when the name is taken (a retry may adopt its own)."""
    assert incident.id is not None
    private = incident.private
    suffixes = [""] + [f"-{n}" for n in range(2, 6)] + [f"-{secrets.token_hex(2)}" for _ in range(3)]
    last: ChatError | None = None
    for suffix in suffixes:
        name = channel_name(incident.id, incident.title, suffix=suffix)
        try:
            return await deps.incident_chat.create_channel(name=name, private=private)
        except ChannelNameTaken as exc:
            last = exc
        # Only a retry can meet a channel of its own: the crawl is not paid when a person took the name.
        adopted = await own_channel(deps, incident, name=name) if adopt else None
        if adopted is not None:
            return adopted
    raise ChatError(
        f"every channel name tried for {incident.ref} is taken", step="create channel", code="name_taken"
    ) from last
