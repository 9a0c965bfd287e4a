"""Block Kit for the incident surfaces. Every user-typed string goes through `escape`.

Action IDs are the contract between these messages and `listeners/actions`: keep them in `ActionId`.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from bot.clock import elapsed, format_duration, utc_text
from bot.config import Severity
from bot.incidents.models import ActionItem, Incident, Status
from bot.slack.text import chunks, clip, escape, severity, ts, unescape, user
from bot.timeline import events, shown
from bot.timeline.models import TimelineEvent

Block = dict[str, Any]
LINE_TEXT = 500  # characters of an event's own text on a `/incident timeline` line


class ActionId:
    ACK = "incident_ack"
    UPDATE = "incident_update_open"
    RESOLVE = "incident_resolve_open"
    RETRY_SETUP = "incident_retry_setup"
    CREATE_ISSUE = "followup_create_issue"  # value: the action item's id
    PUBLISH = "status_page_publish_open"  # the form is in bot/slack/listeners/actions/statuspage.py


class CallbackId:
    DECLARE = "incident_declare"
    UPDATE = "incident_update"
    RESOLVE = "incident_resolve"


def mrkdwn(text: str, *, verbatim: bool = False) -> Block:
    """`verbatim`: for text from outside (a platform's words), in which Slack then links no bare URL and parses
    no bare mention; the bot's own `*bold*` and `<@U…>` still work."""
    text_object: dict[str, Any] = {
        "type": "mrkdwn",
        "text": clip(text, 3000),
        **({"verbatim": True} if verbatim else {}),
    }
    return {"type": "section", "text": text_object}


def context(text: str) -> Block:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": clip(text, 3000)}]}


def header(text: str) -> Block:
    return {"type": "header", "text": {"type": "plain_text", "text": clip(text, 150), "emoji": True}}


def button(text: str, action_id: str, value: str, style: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {
        "type": "button",
        "text": {"type": "plain_text", "text": clip(text, 75), "emoji": True},
        "action_id": action_id,
        "value": value[:2000],
    }
    if style:
        element["style"] = style
    return element


def retry_setup(number: int | None) -> Block:
    """The Retry setup button, for wherever a declarer hears that setting an incident up failed."""
    return {"type": "actions", "elements": [button("Retry setup", ActionId.RETRY_SETUP, str(number), "primary")]}


def topic(incident: Incident) -> str:
    commander = user(incident.commander) if incident.commander else "no commander"
    return clip(f"{incident.severity} · {incident.status} · IC {commander} · {escape(incident.title)}", 250)


def summary_blocks(incident: Incident, *, now: datetime, publish: bool = False) -> list[Block]:
    """The pinned summary; `publish` adds the *Publish update* button (status page configured, not private)."""
    status = Status(incident.status)
    fields = [
        f"*Severity*\n{severity(incident.severity)}",
        f"*Status*\n{status.emoji} {status.value}",
        f"*Commander*\n{user(incident.commander)}",
        f"*Declared by*\n{user(incident.declared_by)}",
        f"*Declared*\n{ts(incident.declared_at)}",
        f"*Service*\n{escape(incident.service) or '—'}",
    ]
    if incident.comms:
        fields.append(f"*Comms*\n{user(incident.comms)}")
    if incident.scribe:
        fields.append(f"*Scribe*\n{user(incident.scribe)}")
    if incident.acknowledged_at:
        fields.append(f"*Acknowledged*\n{user(incident.acknowledged_by)} {ts(incident.acknowledged_at)}")
    if incident.resolved_at:
        fields.append(f"*Resolved*\n{ts(incident.resolved_at)}, {resolved_after(incident)}")
    blocks: list[Block] = [
        header(f"{incident.ref}: {incident.title}"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": f} for f in fields[:10]]},
    ]
    if incident.description:
        blocks.append(mrkdwn(escape(incident.description)))
    if incident.resolution:
        blocks.append(mrkdwn(f"*Resolution*\n{escape(incident.resolution)}"))
    value = str(incident.id)
    if incident.is_open:
        actions = [
            button("Update status", ActionId.UPDATE, value),
            button("Resolve", ActionId.RESOLVE, value, "danger"),
        ]
        if incident.acknowledged_at is None:
            actions.insert(0, button("Acknowledge", ActionId.ACK, value, "primary"))
        if publish and not incident.private:
            actions.insert(-1, button("Publish update", ActionId.PUBLISH, value))
        blocks.append({"type": "actions", "block_id": "incident_actions", "elements": actions})
    blocks.append(context(f"Open for {format_duration(elapsed(incident.declared_at, incident.resolved_at or now))}"))
    return blocks


def resolved_after(incident: Incident) -> str:
    """`11s after declaration (impact 2m 12s)`: from the declaration, as the post-mortem's time to resolve;
    the impact, from its start, when that came before the declaration (an alert, `/incident started`)."""
    said = f"{format_duration(incident.duration)} after declaration"
    if incident.resolved_at is not None and incident.time_to_detect:
        said += f" (impact {format_duration(elapsed(incident.impact_start, incident.resolved_at))})"
    return said


def summary_text(incident: Incident) -> str:
    return f"{incident.ref} [{incident.severity}] {escape(incident.title)}: {incident.status}"


def private_announcement(incident: Incident) -> str:
    """All that is said of a private incident outside its channel: no title, service, summary or person."""
    if incident.resolved_at:
        return f"🔒 A private {incident.severity} incident was resolved."
    return f"🔒 A private {incident.severity} incident was declared."


def announcement_blocks(incident: Incident) -> list[Block]:
    if incident.private:
        return [mrkdwn(private_announcement(incident))]
    status = Status(incident.status)
    where = f"<#{incident.channel_id}>" if incident.channel_id else "_channel not created_"
    lines = [
        f"{severity(incident.severity)} *{incident.ref}: {escape(incident.title)}*",
        f"{status.emoji} {status.value} · commander {user(incident.commander)} · join {where}",
    ]
    if incident.resolved_at:
        lines.append(f"Resolved {resolved_after(incident)}. {escape(incident.resolution)}".strip())
    return [mrkdwn("\n".join(lines))]


def notice_text(incident: Incident, kind: str, actor: str | None, text: str, detail: dict[str, Any]) -> str:
    who = user(actor) if actor else "The bot"
    said = f"\n>{escape(text)}" if text else ""
    if kind == "status":
        new = Status(detail["new"])
        line = f"{new.emoji} {who} set the status to *{new.value}*{said}"
    elif kind == "severity":
        line = f"{who} changed the severity {detail['old']} → {severity(detail['new'])}"
    elif kind == "role":
        line = f"{who} made {user(detail['user'])} the *{detail['role']}*"
    elif kind == "ack":
        line = f"✋ {who} acknowledged {incident.ref}"
    elif kind == "resolved":
        line = f"✅ {who} resolved {incident.ref} {resolved_after(incident)}{said}"
    elif kind == "action_item":
        owner = f" (owner {user(detail['owner'])})" if detail.get("owner") else ""
        line = f"📋 {who} added a follow-up{owner}:{said}"
    elif kind == "impact":
        line = f"⏱️ {who} corrected the impact start: impact started at {ts(detail['at'])}; "
        line += f"time to detect {detail['time_to_detect']}"
    else:
        line = f"{who}: {escape(text)}"
    return line


def incident_list(incidents: Sequence[Incident], *, now: datetime) -> list[Block]:
    if not incidents:
        return [mrkdwn("No open incidents. 🎉")]
    lines = []
    for inc in incidents[:100]:
        where = f"<#{inc.channel_id}>" if inc.channel_id else "(no channel)"
        lines.append(
            f"{severity(inc.severity)} *{inc.ref}* {escape(inc.title)} · {inc.status} · "
            f"{user(inc.commander)} · {format_duration(now - inc.declared_at)} · {where}"
        )
    blocks = [header(f"Open incidents ({len(incidents)})")]
    blocks += [mrkdwn(text) for text in chunks(lines)[:45]]
    return blocks


def _event_line(event: TimelineEvent) -> str:
    star = "📌 " if event.key else ""
    actor = shown.author(event.kind, event.actor)
    who = f" {user(actor)}" if actor else ""
    # Channel messages are stored as Slack sent them, `<`, `>` and `&` encoded: decoded first, or
    # escaping again shows `&lt;`. Cut before escaping: a cut after it can fall inside `&amp;`.
    text = escape(clip(unescape(shown.text(event.kind, event.text)), LINE_TEXT))
    payload = events.read(event)
    if isinstance(payload, events.StatusChanged):
        text = f"{payload.old} → {payload.new}" + (f": {text}" if text else "")
    elif isinstance(payload, events.RoleAssigned):
        text = f"{escape(payload.role)}: {user(payload.user)}"  # the person by name
    elif isinstance(payload, events.Acknowledged) and payload.for_whom:
        text = "for " + ", ".join(user(u) for u in payload.for_whom)
    text = _local_times(text, payload)
    link = f" <{event.permalink}|↗>" if event.permalink else ""
    return f"{ts(event.at, seconds=True)} {star}*{event.kind}*{who} {text}{link}"


def _local_times(text: str, payload: events.Payload | None) -> str:
    """Times the stored text says in UTC (it feeds the post-mortem), shown in the reader's time zone:
    the payload keeps them as times, and the stored words are written by `utc_text`."""
    times: list[datetime | None] = []
    if isinstance(payload, events.Impact):
        times = [payload.impact_started_at]
    elif isinstance(payload, events.AlertChanged):  # the impact start moved earlier by an alert
        times = [payload.impact_started_at, payload.impact_previous]
    elif isinstance(payload, events.UnfinishedWork):
        times = [payload.retry_at]
    for when in times:
        if when is None:
            continue
        for fmt in ("%Y-%m-%d %H:%M:%S", "%H:%M:%S"):
            said = utc_text(when, fmt)
            if said in text:
                text = text.replace(said, ts(when, seconds=True), 1)
                break
    return text


def timeline_blocks(incident: Incident, events: Sequence[TimelineEvent], *, total: int) -> list[Block]:
    blocks = [header(f"{incident.ref} timeline")]
    blocks += [mrkdwn(text) for text in chunks([_event_line(e) for e in events])[:45]]
    if total > len(events):
        blocks.append(
            context(f"Showing the last {len(events)} of {total} events. `/incident postmortem` has them all.")
        )
    return blocks


def action_item_line(item: ActionItem) -> str:
    owner = f" ({user(item.owner)})" if item.owner else ""
    done = "~" if item.done else ""
    issue = f" · <{item.issue_url}|issue>" if item.issue_url else ""
    if not issue and item.issue_gone:
        issue = f" · issue {escape(item.issue_gone)} gone from the tracker"
    return f"• {done}{escape(item.text)}{done}{owner}{issue}"


def create_issue_button(item_id: int | None) -> dict[str, Any]:
    return button("Create issue", ActionId.CREATE_ISSUE, str(item_id))


def followup_notice(text: str, *, item_id: int) -> list[Block]:
    """The "added a follow-up" line with its *Create issue* button."""
    section = mrkdwn(text)
    section["accessory"] = create_issue_button(item_id)
    return [section]


def followup_list(items: Sequence[ActionItem], *, tracker: bool) -> list[Block]:
    """One line per follow-up: a link to its issue, or *Create issue* when a tracker is configured."""
    out: list[Block] = []
    for item in items[:45]:
        section = mrkdwn(action_item_line(item))
        if tracker and not item.issue_url and not item.done:
            section["accessory"] = create_issue_button(item.id)
        out.append(section)
    if len(items) > 45:
        out.append(context(f"… and {len(items) - 45} more; the post-mortem lists them all."))
    return out


def usage_blocks(message: str, usage: str, suggestion: str | None) -> list[Block]:
    """`message` is mrkdwn already (`text.error_text`): its times are Slack's date tokens."""
    text = f"{message}\nUsage: `{escape(usage)}`"  # `<@user>` unescaped would be a mention
    if suggestion:
        text += f"\nDid you mean: `{escape(suggestion)}`"
    return [mrkdwn(text)]


def _severity_options() -> list[dict[str, Any]]:
    return [{"text": {"type": "plain_text", "text": f"{s.value} ({s.label})"}, "value": s.value} for s in Severity]


PRIVATE_OPTION = {
    "text": {"type": "mrkdwn", "text": "*Private*"},
    "description": {"type": "mrkdwn", "text": "A private channel; only its members see the incident"},
    "value": "private",
}


def _input(block_id: str, label: str, element: dict[str, Any], *, optional: bool = False) -> Block:
    block: Block = {"type": "input", "block_id": block_id, "label": {"type": "plain_text", "text": label}}
    if optional:
        block["optional"] = True
    block["element"] = element
    return block


def _select(options: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
    return {"type": "static_select", "action_id": "value", "options": options, **extra}


def declare_modal(
    *, services: Sequence[str], playbooks: Sequence[tuple[str, str]], channel_id: str, private: bool = False
) -> dict[str, Any]:
    severities = _severity_options()
    blocks: list[Block] = [
        _input("title", "What is broken?", {"type": "plain_text_input", "action_id": "value", "max_length": 300}),
        _input("severity", "Severity", _select(severities, initial_option=severities[1])),
    ]
    if services:
        options = [{"text": {"type": "plain_text", "text": s}, "value": s} for s in services[:100]]
        blocks.append(_input("service", "Service", _select(options), optional=True))
    if playbooks:
        options = [
            {"text": {"type": "plain_text", "text": clip(title, 75)}, "value": pid} for pid, title in playbooks[:100]
        ]
        blocks.append(_input("playbook", "Playbook", _select(options), optional=True))
    description = {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000}
    blocks.append(_input("description", "What do you know so far?", description, optional=True))
    checkbox: dict[str, Any] = {"type": "checkboxes", "action_id": "value", "options": [PRIVATE_OPTION]}
    if private:
        checkbox["initial_options"] = [PRIVATE_OPTION]
    blocks.append(_input("private", "Visibility", checkbox, optional=True))
    return {
        "type": "modal",
        "callback_id": CallbackId.DECLARE,
        "private_metadata": channel_id,
        "title": {"type": "plain_text", "text": "Declare an incident"},
        "submit": {"type": "plain_text", "text": "Declare"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": blocks,
    }


def update_modal(incident: Incident) -> dict[str, Any]:
    options = [
        {"text": {"type": "plain_text", "text": f"{s.emoji} {s.value}"}, "value": s.value}
        for s in (Status.INVESTIGATING, Status.IDENTIFIED, Status.MONITORING)
    ]
    current = next((o for o in options if o["value"] == incident.status), options[0])
    return {
        "type": "modal",
        "callback_id": CallbackId.UPDATE,
        "private_metadata": str(incident.id),
        "title": {"type": "plain_text", "text": clip(f"Update {incident.ref}", 24)},
        "submit": {"type": "plain_text", "text": "Post update"},
        "blocks": [
            {
                "type": "input",
                "block_id": "status",
                "label": {"type": "plain_text", "text": "Status"},
                "element": {
                    "type": "static_select",
                    "action_id": "value",
                    "options": options,
                    "initial_option": current,
                },
            },
            {
                "type": "input",
                "block_id": "message",
                "optional": True,
                "label": {"type": "plain_text", "text": "What changed?"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000},
            },
        ],
    }


def resolve_modal(incident: Incident) -> dict[str, Any]:
    return {
        "type": "modal",
        "callback_id": CallbackId.RESOLVE,
        "private_metadata": str(incident.id),
        "title": {"type": "plain_text", "text": clip(f"Resolve {incident.ref}", 24)},
        "submit": {"type": "plain_text", "text": "Resolve"},
        "blocks": [
            {
                "type": "input",
                "block_id": "summary",
                "optional": True,
                "label": {"type": "plain_text", "text": "Resolution summary (root cause, fix)"},
                "element": {"type": "plain_text_input", "action_id": "value", "multiline": True, "max_length": 3000},
            }
        ],
    }
