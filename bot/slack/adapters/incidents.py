"""The incident chat port, implemented with the Slack Web API."""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import hmac
import logging
import time
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.http_retry.async_handler import AsyncRetryHandler
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Clock, utc
from bot.config import is_user_id
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.incidents.ports import Channel, Notice
from bot.observability import slack_method
from bot.slack import blocks
from bot.slack.api import call, data, find_marked, invite
from bot.slack.text import clip, escape

log = logging.getLogger(__name__)

# Message metadata on the summary and the announcement: a resumed setup finds what it posted.
POST_EVENTS = {"summary": "incident_summary", "announcement": "incident_announcement"}


def _marker(kind: str, incident: Incident, *, legacy_key: bytes) -> dict[str, Any]:
    """The metadata a post carries. Any app in a channel reads its messages' metadata, so a private
    incident's announcement (in `#incidents`) names it by its alias, derived from the incident's own
    secret in the database: the bot tells its own announcement apart, an outsider learns no number from
    it, and a token rotated between the post and a resumed setup changes nothing.

    A private incident declared before it had a secret keeps the digest it was announced with, keyed
    with the bot's token (`legacy_key`)."""
    if kind == "announcement" and incident.private:
        mark = incident.alias("announcement")
        if mark is None:
            mark = hmac.new(legacy_key, f"announcement:{incident.id}".encode(), hashlib.sha256).hexdigest()[:32]
        return {"event_type": POST_EVENTS[kind], "event_payload": {"mark": mark}}
    return {"event_type": POST_EVENTS[kind], "event_payload": {"incident": incident.id}}


class Pacer:
    """At most `limit` calls in any `window` seconds, in order of arrival, shared by every waiter.

    Slack states its tiers so (tier 2: 20 a minute), so the first `limit` calls go at once (the
    first incidents of a storm get their channels without waiting) and the rest as the window
    frees up. When Slack answers 429 anyway (`throttled`: another process, or Slack counting
    differently), the refused call is retried by slack_sdk's rate-limit handler after Retry-After,
    outside the pacer: it is booked in the window at that time, or the refusals carried over from
    window to window (each refused call went twice through one).
    """

    # Calls reach Slack a little after they leave here, some later than others: a call that left
    # just one window after an earlier one can arrive just inside Slack's window (429, and a
    # Retry-After of at least a second). A margin of 2 % of the window covers that.
    MARGIN = 0.02

    def __init__(self, *, limit: int, window: float) -> None:
        self.limit = max(limit, 1)
        self.window = window * (1 + self.MARGIN)
        self._booked: list[float] = []  # monotonic times of the last `limit` calls, sorted (some ahead: retries)
        self.lock = asyncio.Lock()

    async def acquire(self) -> None:
        async with self.lock:
            while True:
                now = time.monotonic()
                if len(self._booked) < self.limit or self._booked[0] <= now - self.window:
                    break
                await asyncio.sleep(self._booked[0] + self.window - now)
            self._book(now)

    def throttled(self, retry_after: float) -> None:
        """Slack refused a call with 429: its retry, `retry_after` seconds from now, takes a place in the window."""
        self._book(time.monotonic() + retry_after)

    def _book(self, at: float) -> None:
        bisect.insort(self._booked, at)
        del self._booked[: -self.limit]


class _CreateThrottled(AsyncRetryHandler):
    """A slack_sdk retry handler that never retries: it tells the create pacer of 429s on conversations.create.

    Placed before the rate-limit handler, which does the retrying (slack_sdk asks handlers in order).
    """

    def __init__(self, chat: SlackIncidentChat) -> None:
        super().__init__(max_retry_count=0)
        self.chat = chat

    async def can_retry_async(  # sees every answer, whatever the attempt
        self, *, state: Any, request: Any, response: Any = None, error: Exception | None = None
    ) -> bool:
        if (
            response is not None
            and response.status_code == 429
            and slack_method(getattr(request, "url", "") or "") == "conversations.create"
        ):
            self.chat.create_pacer.throttled(_retry_after(response.headers))
        return False


def _retry_after(headers: dict[str, Any]) -> float:
    for name, value in headers.items():
        if name.lower() == "retry-after":
            try:
                return float(value[0] if isinstance(value, list) else value)
            except (TypeError, ValueError, IndexError):
                break
    return 1.0  # slack_sdk waits about this long without the header


class SlackIncidentChat:
    # conversations.create is tier 2: about 20 a minute per workspace.
    CREATE_LIMIT = 20
    CREATE_WINDOW = 60.0
    # Slack stamps `created` in whole seconds by its own clock: a channel made just after the
    # incident row can look a little older than it. Far below any real reuse of a name.
    CREATED_SKEW = timedelta(seconds=10)
    # conversations.list is tier 2; 50 pages of 200 covers 10,000 channels without holding the
    # setup lease (two minutes) hostage to a crawl of a giant workspace.
    LIST_PAGE = 200
    LIST_MAX_PAGES = 50
    publish_button = False  # the summary's *Publish update*: set when the status page is configured

    def __init__(self, client: AsyncWebClient, *, clock: Clock) -> None:
        self.client = client
        self.clock = clock
        self.create_pacer = Pacer(limit=self.CREATE_LIMIT, window=self.CREATE_WINDOW)
        client.retry_handlers.insert(0, _CreateThrottled(self))
        self._auth: dict[str, Any] | None = None
        self._legacy_mark_key = hashlib.sha256(b"incident-bot post mark\0" + (client.token or "").encode()).digest()

    def _marker(self, kind: str, incident: Incident) -> dict[str, Any]:
        return _marker(kind, incident, legacy_key=self._legacy_mark_key)

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
        # The name is not logged (a private incident's is made from its title): the caller says which incident.
        log.warning("looking up a channel by name: gave up after %d pages of conversations.list", self.LIST_MAX_PAGES)
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
                "channel %s, of the name asked for, is not this incident's: %s", found.get("id"), ", ".join(reasons)
            )
            return None
        return Channel(id=str(found["id"]), name=str(found["name"]))

    async def find_own_post(self, *, channel_id: str, kind: str, incident: Incident) -> str | None:
        """Read the channel's history since the declaration (a few pages at most) for our marked post."""
        me = str((await self._whoami()).get("user_id") or "")
        oldest = utc(incident.declared_at) - self.CREATED_SKEW

        async def page(kwargs: dict[str, Any]) -> dict[str, Any]:
            return data(await call("look for an earlier post", self.client.conversations_history(**kwargs)))

        found = await find_marked(
            page, channel=channel_id, oldest=oldest, metadata=self._marker(kind, incident), author=me
        )
        return str(found["ts"]) if found is not None else None

    async def tell_setup_resumed(self, *, incident: Incident, problems: list[str]) -> None:
        where = f"<#{incident.channel_id}>" if incident.channel_id else "no channel yet"
        # A DM is outside the incident's channel: a private incident's title is read in the channel itself.
        about = "a private incident" if incident.private else escape(clip(incident.title, 150))
        head = f"{incident.ref} ({about}): the bot restarted while setting it up"
        if problems:
            text = f"⚠️ {head}; finishing it failed: {escape('; '.join(problems))}. {where}"
            extra: list[dict[str, Any]] = [blocks.retry_setup(incident.id)]
        else:
            text = f"✅ {head}; it has finished the setup now: {where}"
            extra = []
        response = await call("open a DM", self.client.conversations_open(users=incident.declared_by))
        channel = str((data(response).get("channel") or {}).get("id") or incident.declared_by)
        await call(
            "tell the declarer",
            self.client.chat_postMessage(channel=channel, text=text, blocks=[blocks.mrkdwn(text), *extra]),
        )

    async def tell_channel_archived(self, *, to: str, incident: Incident, archived_by: str | None) -> None:
        # A DM is outside the incident's channel: a private incident's title is read in the channel itself,
        # and the channel is named by its link, which Slack shows only to those who may see it. Only a public
        # incident's notice goes to a channel (the domain's choice): nobody is in charge to DM.
        about = "a private incident" if incident.private else escape(clip(incident.title, 150))
        by = f" by <@{archived_by}>" if is_user_id(archived_by) else ""
        nobody = "" if is_user_id(to) else " Nobody is in charge of it yet."
        text = (
            f":warning: <#{incident.channel_id}> was archived{by} while {incident.ref} ({about}) is open: the bot "
            "can no longer post there (updates, reminders, page mentions), and Slack does not let it unarchive "
            f"the channel.{nobody} Unarchive it to keep working: open the channel's name, then Settings, then "
            "Unarchive channel."
        )
        channel = to
        if is_user_id(to):
            response = await call("open a DM", self.client.conversations_open(users=to))
            channel = str((data(response).get("channel") or {}).get("id") or to)
        await call("tell that the channel was archived", self.client.chat_postMessage(channel=channel, text=text))

    async def post_line(self, *, channel_id: str, text: str) -> None:
        await call("post in channel", self.client.chat_postMessage(channel=channel_id, text=text))

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
                blocks=blocks.summary_blocks(incident, now=self.clock.now(), publish=self.publish_button),
                unfurl_links=False,
                metadata=self._marker("summary", incident),
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

    async def refresh_summary(self, *, incident: Incident) -> str:
        assert incident.channel_id and incident.summary_ts
        text = blocks.summary_text(incident)  # what a 📌 on the summary keeps of it
        await call(
            "update summary",
            self.client.chat_update(
                channel=incident.channel_id,
                ts=incident.summary_ts,
                text=text,
                blocks=blocks.summary_blocks(incident, now=self.clock.now(), publish=self.publish_button),
            ),
        )
        return text

    async def delete_post(self, *, channel_id: str, ts: str) -> None:
        await call("delete a second summary", self.client.chat_delete(channel=channel_id, ts=ts))

    async def announce(self, *, incident: Incident, channel: str) -> str:
        response = await call(
            "announce",
            self.client.chat_postMessage(
                channel=channel,
                text=_announcement_text(incident),
                blocks=blocks.announcement_blocks(incident),
                metadata=self._marker("announcement", incident),
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
                text=_announcement_text(incident),
                blocks=blocks.announcement_blocks(incident),
                # Written again for a private one: an announcement posted while the metadata named the
                # incident loses its number at its next update (Slack keeps metadata an update omits).
                metadata=self._marker("announcement", incident) if incident.private else None,
            ),
        )

    async def post_notice(self, *, incident: Incident, notice: Notice) -> str | None:
        if not incident.channel_id:
            return None
        text = blocks.notice_text(incident, notice.kind, notice.actor, notice.text, notice.detail)
        extra: dict[str, Any] = {}
        if notice.kind == "action_item" and notice.detail.get("offer_issue") and notice.detail.get("item_id"):
            extra["blocks"] = blocks.followup_notice(text, item_id=int(notice.detail["item_id"]))
        response = await call(
            "post in channel", self.client.chat_postMessage(channel=incident.channel_id, text=text, **extra)
        )
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


def _announcement_text(incident: Incident) -> str:
    return blocks.private_announcement(incident) if incident.private else blocks.summary_text(incident)
