"""The incident chat port, implemented with the Slack Web API."""

from __future__ import annotations

import asyncio
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, utc
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.incidents.ports import Channel, Notice
from bot.slack import blocks
from bot.slack.api import call, data, invite

log = logging.getLogger(__name__)


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
    # Slack stamps `created` in whole seconds by its own clock: a channel made just after the
    # incident row can look a little older than it. Far below any real reuse of a name.
    CREATED_SKEW = timedelta(seconds=10)
    # conversations.list is tier 2; 50 pages of 200 covers 10,000 channels without holding the
    # setup lease (two minutes) hostage to a crawl of a giant workspace.
    LIST_PAGE = 200
    LIST_MAX_PAGES = 50

    def __init__(self, client: AsyncWebClient, *, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.create_pacer = Pacer(rate=self.CREATE_RATE, burst=self.CREATE_BURST)
        self._auth: dict[str, Any] | None = None

    async def _whoami(self) -> dict[str, Any]:
        """auth.test once per process: the workspace URL (permalinks) and the bot's own user ID."""
        if self._auth is None:
            self._auth = data(await call("auth.test", self.client.auth_test()))
        return self._auth

    async def create_channel(self, *, name: str, private: bool) -> Channel:
        await self.create_pacer.acquire()
        response = await call("create channel", self.client.conversations_create(name=name, is_private=private))
        channel = data(response)["channel"]
        return Channel(id=channel["id"], name=channel["name"])

    async def find_own_channel(self, *, name: str, created_after: datetime) -> Channel | None:
        """Walk conversations.list for `name`: Slack has no lookup by name, its `name_taken` carries no
        channel ID, and conversations.info needs one. Only called after `name_taken`, which is rare
        (a retry after a lost write, or a name someone else took), so the crawl's cost (one tier-2
        call per 200 channels) is paid seldom.
        """
        me = str((await self._whoami()).get("user_id") or "")
        if not me:
            return None
        not_before = utc(created_after) - self.CREATED_SKEW
        cursor = ""
        for _ in range(self.LIST_MAX_PAGES):
            # A private channel the bot made is listed: it is a member. Archived ones can't be reused.
            kwargs: dict[str, Any] = {
                "types": "public_channel,private_channel",
                "exclude_archived": True,
                "limit": self.LIST_PAGE,
            }
            if cursor:
                kwargs["cursor"] = cursor
            body = data(await call("look up the incident channel", self.client.conversations_list(**kwargs)))
            for found in body.get("channels") or []:
                if found.get("name") == name:
                    return self._if_own(found, me=me, not_before=not_before)
            # Slack may return short (even empty) pages before the end: only an empty cursor ends the list.
            cursor = str((body.get("response_metadata") or {}).get("next_cursor") or "")
            if not cursor:
                return None
        log.warning("looking up #%s: gave up after %d pages of conversations.list", name, self.LIST_MAX_PAGES)
        return None

    @staticmethod
    def _if_own(found: dict[str, Any], *, me: str, not_before: datetime) -> Channel | None:
        """The channel, when it is provably one this bot made for the incident (not a person's, not older)."""
        created = found.get("created")
        reasons = []
        if found.get("creator") != me:
            reasons.append(f"made by {found.get('creator') or 'someone else'}")
        if found.get("is_archived"):
            reasons.append("archived")
        if found.get("is_member") is False:
            reasons.append("the bot is not a member")
        if not isinstance(created, int | float) or datetime.fromtimestamp(created, UTC) < not_before:
            reasons.append(f"created before the incident ({created})")
        if reasons:
            log.info(
                "channel #%s (%s) is not this incident's: %s", found.get("name"), found.get("id"), ", ".join(reasons)
            )
            return None
        return Channel(id=str(found["id"]), name=str(found["name"]))

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
        try:
            team_url = str((await self._whoami()).get("url") or "")
        except ChatError:
            return None
        if not team_url:
            return None
        link = f"{team_url.rstrip('/')}/archives/{channel_id}/p{message_ts.replace('.', '')}"
        if thread_ts and thread_ts != message_ts:
            link += f"?thread_ts={thread_ts}&cid={channel_id}"
        return link
