"""Making user text safe to echo in Slack.

Slack mrkdwn treats `<...>` as a link or mention (`<!channel>`, `<@U1>`, `<https://evil|Docs>`), so
`&`, `<` and `>` are escaped in everything a user typed. We never send `link_names`, so a bare
`@channel` stays plain text.
"""

from __future__ import annotations

from datetime import datetime

from bot.clock import utc, utc_text
from bot.config import Severity, is_user_id
from bot.exceptions import BotError

MAX_SECTION = 3000


def escape(text: str | None) -> str:
    if not text:
        return ""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def unescape(text: str) -> str:
    """What the person typed: Slack sends `&`, `<` and `>` of typed text as `&amp;`, `&lt;`, `&gt;`
    (its markup, such as `<@U1|ann>`, stays as it is). Decoded once where text comes in, so it is
    stored as typed (as form inputs are) and `escape` on the way out does not show `&amp;`."""
    return text.replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")


def clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def user(user_id: str | None) -> str:
    """A mention for a Slack user; system actors (an alert source) are shown as plain text."""
    if not user_id:
        return "_unassigned_"
    return f"<@{user_id}>" if is_user_id(user_id) else escape(user_id)


def principal(ref: str) -> str:
    """A user, a user group or a handle as Slack renders it (a mention where it is an ID)."""
    if ref.startswith(("U", "W")) and is_user_id(ref):
        return f"<@{ref}>"
    if ref.startswith("S") and ref[1:].isalnum() and ref.isupper():
        return f"<!subteam^{ref}>"
    return escape(ref)


def ts(when: datetime | None, *, seconds: bool = False) -> str:
    """Slack renders this in each reader's own time zone, with UTC as the fallback text."""
    if when is None:
        return "—"
    at = utc(when)
    shown, fallback = ("{time_secs}", "%Y-%m-%d %H:%M:%S") if seconds else ("{time}", "%Y-%m-%d %H:%M")
    return f"<!date^{int(at.timestamp())}^{{date_short_pretty}} {shown}|{utc_text(at, fallback)}>"


def error_text(exc: BotError) -> str:
    """An error's words escaped (they may hold what a user typed), its people as mentions, its times
    in the reader's time zone."""
    return exc.render(words=escape, people=lambda ids: " or ".join(principal(p) for p in ids), time=ts)


def channel(channel_id: str | None) -> str:
    return f"<#{channel_id}>" if channel_id else "_no channel_"


SEVERITY_EMOJI = {Severity.P1: "🔴", Severity.P2: "🟠", Severity.P3: "🟡", Severity.P4: "🔵"}


def severity(sev: Severity | str) -> str:
    sev = Severity(sev)
    return f"{SEVERITY_EMOJI[sev]} {sev.value} ({sev.label})"


def chunks(lines: list[str], *, limit: int = MAX_SECTION) -> list[str]:
    """Pack lines into section-sized texts without splitting a line."""
    out: list[str] = []
    current = ""
    for whole in lines:
        line = clip(whole, limit)
        if current and len(current) + 1 + len(line) > limit:
            out.append(current)
            current = line
        else:
            current = f"{current}\n{line}" if current else line
    if current:
        out.append(current)
    return out
