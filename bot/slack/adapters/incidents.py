"""The incident chat port, implemented with the Slack Web API."""

from __future__ import annotations

import asyncio
import time

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.incidents.ports import Channel, Notice
from bot.slack import blocks
from bot.slack.api import call, data, invite


class Pacer:
    """A token bucket: bursts up to `burst`, then `rate` calls per second, shared by every waiter."""

    def __init__(self, *, rate: float, burst: int) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = float(burst)
        self.updated = time.monotonic()
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            if self.tokens < 1:
                await asyncio.sleep((1 - self.tokens) / self.rate)
                self.tokens = 1.0
                self.updated = time.monotonic()
            self.tokens -= 1


class SlackIncidentChat:
    # conversations.create is tier 2: about 20 a minute per workspace.
    CREATE_RATE = 20 / 60
    CREATE_BURST = 10

    def __init__(self, client: AsyncWebClient, *, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.create_pacer = Pacer(rate=self.CREATE_RATE, burst=self.CREATE_BURST)
        self._team_url: str | None = None

    async def create_channel(self, *, name: str, private: bool) -> Channel:
        await self.create_pacer.acquire()
        response = await call("create channel", self.client.conversations_create(name=name, is_private=private))
        channel = data(response)["channel"]
        return Channel(id=channel["id"], name=channel["name"])

    async def invite(self, *, channel_id: str, users: list[str]) -> None:
        await invite(self.client, channel_id=channel_id, users=users)

    async def set_topic(self, *, incident: Incident) -> None:
        assert incident.channel_id
        await call(
            "set topic", self.client.conversations_setTopic(channel=incident.channel_id, topic=blocks.topic(incident))
        )

    async def post_summary(self, *, incident: Incident) -> str:
        assert incident.channel_id
        response = await call(
            "post summary",
            self.client.chat_postMessage(
                channel=incident.channel_id,
                text=blocks.summary_text(incident),
                blocks=blocks.summary_blocks(incident, now=self.clock.now()),
                unfurl_links=False,
            ),
        )
        return str(data(response)["ts"])

    async def pin(self, *, channel_id: str, message_ts: str) -> None:
        try:
            await call(
                "pin summary",
                self.client.pins_add(channel=channel_id, timestamp=message_ts),
                expected=frozenset({"already_pinned"}),
            )
        except ChatError as exc:
            if exc.code != "already_pinned":
                raise

    async def refresh_summary(self, *, incident: Incident) -> None:
        assert incident.channel_id and incident.summary_ts
        await call(
            "update summary",
            self.client.chat_update(
                channel=incident.channel_id,
                ts=incident.summary_ts,
                text=blocks.summary_text(incident),
                blocks=blocks.summary_blocks(incident, now=self.clock.now()),
            ),
        )

    async def announce(self, *, incident: Incident, channel: str) -> str:
        response = await call(
            "announce",
            self.client.chat_postMessage(
                channel=channel, text=blocks.summary_text(incident), blocks=blocks.announcement_blocks(incident)
            ),
        )
        return str(data(response)["ts"])

    async def refresh_announcement(self, *, incident: Incident) -> None:
        assert incident.announcement_channel and incident.announcement_ts
        await call(
            "update announcement",
            self.client.chat_update(
                channel=incident.announcement_channel,
                ts=incident.announcement_ts,
                text=blocks.summary_text(incident),
                blocks=blocks.announcement_blocks(incident),
            ),
        )

    async def post_notice(self, *, incident: Incident, notice: Notice) -> str | None:
        if not incident.channel_id:
            return None
        text = blocks.notice_text(incident, notice.kind, notice.actor, notice.text, notice.detail)
        response = await call("post in channel", self.client.chat_postMessage(channel=incident.channel_id, text=text))
        return str(data(response)["ts"])

    async def permalink(self, *, channel_id: str, message_ts: str, thread_ts: str | None = None) -> str | None:
        """Slack's permalink shape, built locally: one auth.test per process instead of a call per message."""
        if self._team_url is None:
            try:
                self._team_url = str(data(await call("workspace URL", self.client.auth_test())).get("url") or "")
            except ChatError:
                return None
        if not self._team_url:
            return None
        link = f"{self._team_url.rstrip('/')}/archives/{channel_id}/p{message_ts.replace('.', '')}"
        if thread_ts and thread_ts != message_ts:
            link += f"?thread_ts={thread_ts}&cid={channel_id}"
        return link
