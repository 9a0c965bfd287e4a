"""The escalation `Pager` port with the Slack Web API: page DMs, the channel mention, reminders.

A DM is `conversations.open` then `chat.postMessage` to the IM, so an unknown or deactivated user
fails with Slack's own code (`user_not_found`, `user_disabled`) that the flow reports in the channel.
A page DM and its mention in the channel carry message metadata naming the page, and a reminder metadata
naming the reminder, so a retry after an answer that never came back finds it in the DM's or the channel's
history (`im:history`, `channels:history`, `groups:history`) instead of posting it twice.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import format_duration
from bot.escalation.models import ReminderKind
from bot.escalation.ports import PAGERDUTY, PageMessage, Pager, PageReport, ReminderMessage
from bot.exceptions import ChatError
from bot.incidents.access import Access
from bot.incidents.models import Incident, Status
from bot.slack import blocks
from bot.slack.api import CHANNEL_GONE, GroupHandles, UserHandles, call, data, invite, marked_in
from bot.slack.text import clip, escape, severity, ts

log = logging.getLogger(__name__)

Block = dict[str, Any]

# The Acknowledge button on a page DM; handled in bot/slack/listeners/actions/escalation.py.
PAGE_ACK = "escalation_page_ack"
# The metadata events of a page DM and of a reminder. Metadata is readable by the whole workspace: it names
# the row's id only.
PAGE_EVENT = "incident_page"
MENTION_EVENT = "incident_page_mention"
REMINDER_EVENT = "incident_reminder"


def page_marker(page_id: int) -> dict[str, Any]:
    return {"event_type": PAGE_EVENT, "event_payload": {"page": page_id}}


def mention_marker(page_id: int) -> dict[str, Any]:
    return {"event_type": MENTION_EVENT, "event_payload": {"page": page_id}}


def reminder_marker(reminder_id: int) -> dict[str, Any]:
    return {"event_type": REMINDER_EVENT, "event_payload": {"reminder": reminder_id}}


def mention(target: str) -> str:
    """A user, a user group or a handle as Slack renders it."""
    if target.startswith(("U", "W")):
        return f"<@{target}>"
    if target.startswith("S"):
        return f"<!subteam^{target}>"
    return escape(target)


def page_value(incident_id: int, page_id: int) -> str:
    return f"{incident_id}:{page_id}"


def _level(page: PageMessage) -> str:
    text = f"level {page.level} ({escape(page.name)})"
    if page.repeat:
        text += f", reminder {page.repeat}"
    return text


def page_blocks(incident: Incident, page: PageMessage) -> list[Block]:
    status = Status(incident.status)
    where = f"<#{incident.channel_id}>" if incident.channel_id else "_no channel yet_"
    lines = [
        f"*{severity(incident.severity)}* · {status.emoji} {status.value} · join {where}",
        f"You are paged as {_level(page)}. Declared {ts(incident.declared_at)}.",
    ]
    if page.paged_at_level is not None:  # a note, not a second page: no header, one line
        lines = [f"{_escalated(incident, page)} · {status.emoji} {status.value} · {where}"]
        lines += [_acked(incident)] if incident.acknowledged_by else []
        return [blocks.mrkdwn("\n".join(lines)), _ack_actions(incident, page)]
    if incident.acknowledged_by:
        lines.append(_acked(incident))
    if page.late_by is not None:
        lines.append(f"⚠️ This page is late by {format_duration(page.late_by)} (the bot was down or busy).")
    return [
        blocks.header(f"🚨 {incident.ref}: {page_title(incident)}"),
        blocks.mrkdwn("\n".join(lines)),
        _ack_actions(incident, page),
    ]


def _ack_actions(incident: Incident, page: PageMessage) -> Block:
    button = blocks.button("Acknowledge", PAGE_ACK, page_value(incident.id or 0, page.page_id), "primary")
    return {"type": "actions", "block_id": "page_actions", "elements": [button]}


def _escalated(incident: Incident, page: PageMessage) -> str:
    """The note to someone paged already at an earlier level: the incident is still not stopped and the
    escalation reached them again; the page they had is the same incident, not a new one."""
    earlier = page.paged_at_level
    return f"⏫ {incident.ref} escalated to {_level(page)}, which is you too: you were paged at level {earlier}"


def _acked(incident: Incident) -> str:
    """A later level is paged though someone acknowledged (`stop_on: resolve`): whoever is woken up should know
    that somebody has it in hand, and since when, before deciding what to do."""
    since = f" at {ts(incident.acknowledged_at)}" if incident.acknowledged_at is not None else ""
    return f"✋ Acknowledged by <@{incident.acknowledged_by}>{since}; not resolved yet, so the escalation goes on."


def page_text(incident: Incident, page: PageMessage) -> str:
    acked = f"; acknowledged by <@{incident.acknowledged_by}>" if incident.acknowledged_by else ""
    if page.paged_at_level is not None:
        return _escalated(incident, page) + acked
    late = f" (late by {format_duration(page.late_by)})" if page.late_by is not None else ""
    about = (
        f"{incident.ref} [{incident.severity}] {page_title(incident)}"
        if incident.private
        else blocks.summary_text(incident)
    )
    return f"🚨 Paged for {about}{late}{acked}"


def acknowledged_blocks(incident: Incident, user: str, *, note: str = "") -> list[Block]:
    """The DM after its button was pressed: no button, who acknowledged."""
    where = f"<#{incident.channel_id}>" if incident.channel_id else "_no channel yet_"
    text = f"✋ Acknowledged by <@{user}>. Join {where}."
    if note:
        text += f"\n{note}"
    return [blocks.header(f"{incident.ref}: {page_title(incident)}"), blocks.mrkdwn(text)]


def page_title(incident: Incident) -> str:
    """A DM is outside the incident's channel: a private incident's title is read in the channel itself,
    which the person paged is invited to."""
    return "a private incident (details in its channel)" if incident.private else incident.title


def report_text(incident: Incident, report: PageReport) -> str:
    """The channel mention: who was paged (or why nobody), then each failure and retry, one per line."""
    lines = [_report_headline(report)]
    page = report.page
    if page.late_by is not None and report.attempt == 1:
        lines.append(f"_late by {format_duration(page.late_by)}: the bot was down or busy when it was due_")
    lines += [f"⚠️ Could not DM `{escape(user)}`: {escape(reason)}" for user, reason in report.failed.items()]
    lines += [f"⚠️ `{escape(target)}`: {escape(reason)}" for target, reason in report.unresolved.items()]
    lines += _retry_lines(report)
    if report.failed or report.unresolved:
        lines.append(
            "This is the last escalation level: nobody further is paged."
            if report.last_level
            else "The next escalation level still fires on time unless the incident is stopped."
        )
    return clip("\n".join(lines), 3000)


def _report_headline(report: PageReport) -> str:
    level = _level(report.page)
    retry = f" (attempt {report.attempt})" if report.attempt > 1 else ""
    if report.paged:
        who = ", ".join(_paged(u, report.noted.get(u)) for u in report.paged)
        via = f" (and {', '.join(report.via)})" if report.via else ""
        if not report.via and set(report.paged) <= set(report.noted):  # nobody paged anew
            return f"📟 {level[0].upper()}{level[1:]}{retry}: {who}"
        return f"📟 Paged {level}{retry}: {who}{via}"
    if report.via:
        return f"📟 Paged {level}{retry} through {', '.join(report.via)}"
    if report.retrying and report.attempt == 1:
        failed = "PagerDuty" if set(report.retrying) == {PAGERDUTY} else "Slack"
        return f"📟 ⚠️ Paging {level}: {failed} failed, trying again"
    if report.attempt == 1 or not (report.failed or report.unresolved):
        return f"📟 ⚠️ Paging {level} reached nobody"
    return f"📟 ⚠️ Paging {level}{retry}: giving up on"


def _paged(user: str, earlier: int | None) -> str:
    if earlier is None:
        return mention(user)
    return f"{mention(user)} (already paged at level {earlier}, told it escalated)"


def _retry_lines(report: PageReport) -> list[str]:
    when = f" in {format_duration(report.retry_in)}" if report.retry_in is not None else ""
    lines = []
    for target, reason in report.retrying.items():
        # Users whose DM failed were invited to this channel: the mention reaches them meanwhile.
        who = mention(target) if target.startswith(("U", "W")) else f"`{escape(target)}`"
        lines.append(f"⏳ Could not reach {who} yet ({escape(reason)}); trying again{when}")
    return lines


def reminder_text(incident: Incident, reminder: ReminderMessage) -> str:
    who = " ".join(mention(u) for u in reminder.mention)
    who = f"{who} " if who else ""
    if reminder.kind == ReminderKind.STATUS_UPDATE:
        return (
            f"⏰ {who}{incident.ref} has had no status update for {format_duration(reminder.overdue_by)}. "
            "Post one: `/incident update <investigating|identified|monitoring> [what changed]`"
        )
    if reminder.kind == ReminderKind.POSTMORTEM:
        return (
            f"📝 {who}{incident.ref} was resolved {format_duration(reminder.overdue_by)} ago and its post-mortem "
            "is not finished. `/incident postmortem` drafts it from the timeline."
        )
    return f"⏰ {who}{incident.ref}: reminder"


class SlackPager:
    def __init__(self, client: AsyncWebClient, *, handles: UserHandles, access: Access) -> None:
        self.client = client
        self.handles = handles
        self.access = access
        self.groups = GroupHandles(client)
        # user -> DM channel. The bot's DM with a person keeps its ID, and conversations.open is
        # tier 3 (~50 a minute): a storm paging the same few people must not spend it on every page.
        self._dms: dict[str, str] = {}

    async def _dm_channel(self, user: str) -> str:
        if user in self._dms:
            return self._dms[user]
        response = await call("open a DM", self.client.conversations_open(users=user))
        channel = data(response).get("channel") or {}
        if not channel.get("id"):
            raise ChatError("open a DM: Slack returned no channel", step="open a DM", code="no_channel")
        self._dms[user] = str(channel["id"])
        return self._dms[user]

    async def _post_dm(self, user: str, step: str, **message: Any) -> None:
        cached = user in self._dms
        try:
            await call(step, self.client.chat_postMessage(channel=await self._dm_channel(user), **message))
        except ChatError as exc:
            if not cached or exc.code not in CHANNEL_GONE:
                raise
            # A cached DM channel that stopped working (the user deactivated and back, a workspace move).
            self._dms.pop(user, None)
            await call(step, self.client.chat_postMessage(channel=await self._dm_channel(user), **message))

    async def dm_page(self, *, user: str, incident: Incident, page: PageMessage) -> None:
        await self._post_dm(
            user,
            "DM the page",
            text=page_text(incident, page),
            blocks=page_blocks(incident, page),
            unfurl_links=False,
            metadata=page_marker(page.page_id),
        )

    async def page_dm_posted(self, *, user: str, page: PageMessage, since: datetime) -> bool:
        channel = await self._dm_channel(user)
        return await self._marked(channel, since, page_marker(page.page_id), "look for an earlier page DM")

    async def _marked(
        self, channel: str, since: datetime, marker: dict[str, Any], step: str, expected: frozenset[str] = frozenset()
    ) -> bool:
        return await marked_in(self.client, channel=channel, since=since, metadata=marker, step=step, expected=expected)

    async def reminder_posted(self, *, incident: Incident, reminder: ReminderMessage, since: datetime) -> bool:
        """Looked for where `post_reminder` puts it: the channel, else (none, or gone) the people's DMs."""
        marker = reminder_marker(reminder.reminder_id)
        if incident.channel_id:
            try:
                step = "look for an earlier reminder"
                return await self._marked(incident.channel_id, since, marker, step, CHANNEL_GONE)
            except ChatError as exc:
                if exc.code not in CHANNEL_GONE:
                    raise
        for user in reminder.mention:
            if await self._marked(await self._dm_channel(user), since, marker, "look for an earlier reminder DM"):
                return True
        return False

    async def report_page(self, *, incident: Incident, report: PageReport) -> None:
        if not incident.channel_id:
            return
        text = report_text(incident, report)
        marker = mention_marker(report.page.page_id)
        post = self.client.chat_postMessage(channel=incident.channel_id, text=text, metadata=marker)
        await call("mention the paged people", post)

    async def page_report_posted(self, *, incident: Incident, page: PageMessage, since: datetime) -> bool:
        if not incident.channel_id:
            return False
        marker = mention_marker(page.page_id)
        return await self._marked(incident.channel_id, since, marker, "look for an earlier page mention")

    async def invite(self, *, channel_id: str, users: list[str]) -> None:
        try:
            await invite(self.client, channel_id=channel_id, users=users, step="invite to the incident channel")
        finally:  # whoever was invited sees a private incident from now on, not in a minute
            self.access.forget(channel_id=channel_id)

    async def group_members(self, *, group_id: str) -> list[str]:
        if group_id.startswith("@"):
            group_id = await self.groups.group_id(group_id)
        response = await call("read the user group", self.client.usergroups_users_list(usergroup=group_id))
        return [str(u) for u in data(response).get("users") or []]

    async def lookup_user(self, *, handle: str) -> str | None:
        return await self.handles.lookup(handle)

    async def post_reminder(self, *, incident: Incident, reminder: ReminderMessage) -> None:
        text = reminder_text(incident, reminder)
        marker = reminder_marker(reminder.reminder_id)
        if incident.channel_id:
            try:
                await call(
                    "post a reminder",
                    self.client.chat_postMessage(channel=incident.channel_id, text=text, metadata=marker),
                    expected=CHANNEL_GONE,
                )
                return
            except ChatError as exc:
                if exc.code not in CHANNEL_GONE or not reminder.mention:
                    raise
            # Someone archived the channel or removed the bot: retrying there would never reach anyone.
            text += f"\n_(The bot cannot post in <#{incident.channel_id}>: it was archived or the bot removed.)_"
        # No channel (its creation failed, or it is gone): remind the people directly instead.
        for user in reminder.mention:
            await self._post_dm(user, "DM a reminder", text=text, metadata=marker)


if TYPE_CHECKING:

    def _conforms(client: AsyncWebClient, handles: UserHandles, access: Access) -> Pager:
        return SlackPager(client, handles=handles, access=access)
