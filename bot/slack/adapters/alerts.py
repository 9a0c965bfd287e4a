"""The alert chat port, implemented with the Slack Web API: the alert message in the alerts channel
and the notices in a linked incident's channel. Every label and annotation came from outside and
is escaped before it reaches mrkdwn."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.alerts.payloads import without_credentials
from bot.alerts.ports import AlertLine, AlertView
from bot.clock import utc
from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.slack import blocks
from bot.slack.api import call, data, find_marked
from bot.slack.text import chunks, clip, escape, ts

Block = dict[str, Any]
MAX_LINES = 10  # alerts listed in one message; the rest are counted
MAX_LABELS = 12


# Message metadata on the card: a sync after a crash finds the card it posted but never saved.
CARD_EVENT = "alert_group_card"
FIND_SKEW = timedelta(minutes=1)


def _marker(group_id: int) -> dict[str, Any]:
    return {"event_type": CARD_EVENT, "event_payload": {"group": group_id}}


# And on the offer to resolve: a sync that took over a lapsed claim finds the offer its holder posted.
OFFER_EVENT = "alert_resolve_offer"


def _offer_marker(incident_id: int, through: int) -> dict[str, Any]:
    return {"event_type": OFFER_EVENT, "event_payload": {"incident": incident_id, "through": through}}


class AlertActionId:
    """The alert message's buttons; `listeners/actions/alerts.py` answers them."""

    DECLARE = "alert_declare"  # value: alert group id; opens the prefilled declare form
    RESOLVE = "alert_resolve_incident"  # value: incident number


def _link(url: str | None, text: str) -> str:
    # Rows stored before links lost their credentials (`payloads.storable`) may still carry them.
    url = without_credentials(url)
    if not url or not url.startswith(("http://", "https://")):
        return ""
    safe = url.replace("|", "%7C").replace(">", "%3E").replace("<", "%3C").replace(" ", "%20")
    return f"<{safe}|{escape(text)}>"


def _labels(labels: dict[str, str], *, limit: int = MAX_LABELS) -> str:
    items = sorted(labels.items())
    text = " ".join(f"`{escape(clip(k, 60))}={escape(clip(v, 120))}`" for k, v in items[:limit])
    if len(items) > limit:
        text += f" +{len(items) - limit} more"
    return text


def _alert_line(line: AlertLine) -> str:
    icon = "🔥" if line.status == "firing" else "✅"
    parts = [f"{icon} *{escape(clip(line.name, 100))}*"]
    if line.labels:
        parts.append(_labels({k: v for k, v in line.labels.items() if k != "alertname"}, limit=4))
    if line.summary:
        parts.append("— " + escape(clip(line.summary, 300)))
    if line.starts_at is not None:
        parts.append(f"· since {ts(line.starts_at)}")
    source = _link(line.generator_url, "source")
    if source:
        parts.append(f"· {source}")
    return " ".join(p for p in parts if p)


def headline(view: AlertView) -> str:
    if view.status == "firing":
        return f"🔥 FIRING ({view.firing_count:,}): {view.title}"
    return f"✅ RESOLVED: {view.title}"


def alert_text(view: AlertView) -> str:
    """The notification fallback text (plain, escaped)."""
    return escape(clip(f"{headline(view)} [{view.source_name}]", 300))


def alert_blocks(view: AlertView) -> list[Block]:
    out: list[Block] = [blocks.header(headline(view))]
    about = []
    if view.summary:
        about.append(f"*{escape(clip(view.summary, 1000))}*")
    if view.description:
        about.append(escape(clip(view.description, 1500)))
    if view.common_labels:
        about.append(_labels(view.common_labels))
    if about:
        out.append(blocks.mrkdwn("\n".join(about)))
    lines = [_alert_line(a) for a in sorted(view.alerts, key=lambda a: a.status != "firing")[:MAX_LINES]]
    hidden = len(view.alerts) - len(lines) + view.truncated
    if hidden > 0:
        lines.append(f"_…and {hidden:,} more_")
    if view.truncated > 0 and view.status == "firing":
        kept = len(view.alerts)
        lines.insert(
            0, f"*{view.firing_count:,} alerts firing* (the first {kept:,} kept in full, {view.truncated:,} counted)"
        )
    if len(view.alerts) > 1 or hidden > 0:
        out.extend(blocks.mrkdwn(text) for text in chunks(lines, limit=2900)[:3])
    meta = [
        view.source_name,
        f"{view.notifications} notification{'s' if view.notifications != 1 else ''}",
        f"first {ts(view.first_seen_at)}",
        f"last {ts(view.last_seen_at)}",
    ]
    external = _link(view.external_url, f"open in {view.source_name}")
    if external:
        meta.append(external)
    out.append(blocks.context(" · ".join(meta)))
    out += _incident_part(view)
    return out


def _incident_part(view: AlertView) -> list[Block]:
    link = view.incident
    if link is not None:
        how = {
            "auto": f"declared automatically ({escape(view.rule or 'auto_declare rule')})",
            "button": "declared from this alert",
            "fingerprint": "the same alert is already part of it",
        }.get(link.how or "", "linked")
        if link.private:  # as the announcement says it: no ref, channel, status or Retry button in public
            return [blocks.mrkdwn(f"🔒 A private {link.severity} incident — {how}")]
        where = f"<#{link.channel_id}>" if link.channel_id else link.ref
        state = "✅ resolved" if link.status == "resolved" else f"{link.severity} · {link.status}"
        part: list[Block] = [blocks.mrkdwn(f"🚨 *{link.ref}* {where} — {state} — {how}")]
        if link.setup_error and link.status != "resolved":
            part.append(blocks.retry_setup(link.number))
        return part
    if view.declaring:
        return [blocks.context(f"⏳ Declaring an incident ({escape(view.rule or 'auto_declare rule')})…")]
    if view.status != "firing":
        return []
    proposal = [view.proposed_severity]
    if view.proposed_service:
        proposal.append(f"service {escape(view.proposed_service)}")
    if view.proposed_playbook:
        proposal.append(f"playbook {escape(view.proposed_playbook)}")
    return [
        {
            "type": "actions",
            "block_id": "alert_actions",
            "elements": [blocks.button("Declare incident", AlertActionId.DECLARE, str(view.group_id), "primary")],
        },
        blocks.context("Declare proposes: " + " · ".join(proposal)),
    ]


def resolve_button(number: int, ref: str) -> dict[str, Any]:
    button = blocks.button(f"Resolve {ref}", AlertActionId.RESOLVE, str(number), "primary")
    button["confirm"] = {
        "title": {"type": "plain_text", "text": clip(f"Resolve {ref}?", 100)},
        "text": {
            "type": "mrkdwn",
            "text": "The alert cleared. Resolve the incident now? The post-mortem starts from here.",
        },
        "confirm": {"type": "plain_text", "text": "Resolve"},
        "deny": {"type": "plain_text", "text": "Not yet"},
    }
    return button


class SlackAlertChat:
    def __init__(self, client: AsyncWebClient) -> None:
        self.client = client

    async def post_alert(self, *, channel: str, view: AlertView) -> tuple[str, str]:
        response = await call(
            "post the alert",
            self.client.chat_postMessage(
                channel=channel,
                text=alert_text(view),
                blocks=alert_blocks(view),
                metadata=_marker(view.group_id),
                unfurl_links=False,
                unfurl_media=False,
            ),
        )
        body = data(response)
        return str(body.get("channel") or channel), str(body["ts"])

    async def find_alert(self, *, channel: str, group_id: int, since: datetime) -> tuple[str, str] | None:
        """Read the channel's history since the group was first seen (a few pages at most) for its marked card."""
        oldest = utc(since) - FIND_SKEW
        found = await find_marked(self._history, channel=channel, oldest=oldest, metadata=_marker(group_id))
        return (channel, str(found["ts"])) if found is not None else None

    async def _history(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """A page of history; the bot joins first when it posts there without being a member (chat:write.public)."""
        try:
            return data(await call("look for an earlier alert card", self.client.conversations_history(**kwargs)))
        except ChatError as exc:
            if exc.code != "not_in_channel":
                raise
        await call("join the alerts channel", self.client.conversations_join(channel=kwargs["channel"]))
        return data(await call("look for an earlier alert card", self.client.conversations_history(**kwargs)))

    async def update_alert(self, *, channel: str, ts: str, view: AlertView) -> None:
        await call(
            "update the alert",
            self.client.chat_update(channel=channel, ts=ts, text=alert_text(view), blocks=alert_blocks(view)),
        )

    async def notify_incident(
        self,
        *,
        incident: Incident,
        view: AlertView,
        new_alerts: list[AlertLine],
        offer_resolve: bool,
        still_firing: Sequence[str] = (),
        offer_through: int = 0,
        also_cleared: Sequence[str] = (),
    ) -> None:
        if not incident.channel_id:
            return
        out: list[Block] = []
        text = ""
        if new_alerts:
            count = len(new_alerts)
            text = f"🔥 {view.source_name}: {count} more alert{'s' if count != 1 else ''} firing"
            lines = [_alert_line(a) for a in new_alerts[:MAX_LINES]]
            if count > MAX_LINES:
                lines.append(f"_…and {count - MAX_LINES} more_")
            out.append(blocks.mrkdwn(f"*{escape(text)}*\n" + "\n".join(lines)))
        if offer_resolve or still_firing:
            cleared, more = _cleared(
                view, incident, offer_resolve=offer_resolve, still_firing=still_firing, also_cleared=also_cleared
            )
            text = text or cleared
            out.extend(more)
        if not out:
            return
        marker = _offer_marker(incident.id or 0, offer_through) if offer_resolve else None
        await call(
            "tell the incident channel about the alert",
            self.client.chat_postMessage(
                channel=incident.channel_id, text=escape(clip(text, 300)), blocks=out, metadata=marker
            ),
        )

    async def resolve_offer_posted(self, *, incident: Incident, through: int, since: datetime) -> bool:
        if not incident.channel_id:
            return False

        async def read(kwargs: dict[str, Any]) -> dict[str, Any]:
            return data(await call("look for an earlier offer to resolve", self.client.conversations_history(**kwargs)))

        marker = _offer_marker(incident.id or 0, through)
        oldest = utc(since) - FIND_SKEW  # the history is read by Slack's clock, `since` is ours
        return await find_marked(read, channel=incident.channel_id, oldest=oldest, metadata=marker) is not None


def _cleared(
    view: AlertView,
    incident: Incident,
    *,
    offer_resolve: bool,
    still_firing: Sequence[str],
    also_cleared: Sequence[str] = (),
) -> tuple[str, list[Block]]:
    """The group cleared: offer to resolve once nothing of the incident fires, else say what still does."""
    cleared = f"✅ {view.source_name}: {view.title} has resolved"
    if offer_resolve and also_cleared:
        cleared += f", and so has {_names(also_cleared)}"
    if offer_resolve:
        return cleared, [
            blocks.mrkdwn(f"*{escape(cleared)}.* If the service is healthy, resolve {incident.ref}."),
            {"type": "actions", "elements": [resolve_button(incident.id or 0, incident.ref)]},
        ]
    still = f"still firing for {incident.ref}: {_names(still_firing)}"
    return f"{cleared}; {still}", [blocks.mrkdwn(f"*{escape(cleared)}*, but {escape(still)}.")]


def _names(titles: Sequence[str]) -> str:
    """Alert groups' titles in a line: the first few, then how many more."""
    names = [clip(name, 150) for name in titles[:MAX_LINES]]
    if len(titles) > MAX_LINES:
        names.append(f"{len(titles) - MAX_LINES} more")
    return ", ".join(names)
