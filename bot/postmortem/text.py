"""Turning stored text into safe Markdown or HTML, and times into short human forms.

Text in the database is stored as people typed it (commands, forms, the dashboard) and may hold
Slack markup (`<@U123>`, `<#C1|name>`, `<!channel>`, `<https://x|label>`). Channel messages are the
exception: they are kept as Slack sends them, `&`, `<` and `>` encoded, and `slack_decoded` turns
them into typed text once, when the timeline is read. Both outputs turn the markup into plain text;
then Markdown escapes what would change the document's structure (a `|` in a table cell, a leading
`#`, a `[link]`, raw `<html>`) and HTML relies on Jinja's autoescaping.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from urllib.parse import quote

from markupsafe import Markup, escape

from bot.clock import format_duration, utc

_SLACK_TAG = re.compile(r"<([^<>\n]*)>")
_SCHEME = re.compile(r"^(?:https?://|mailto:|tel:)", re.IGNORECASE)
USER_ID = re.compile(r"[UW][A-Z0-9]{2,}")  # a Slack user (not a bot or an alert source)
_SLACK_ENTITIES = (("&lt;", "<"), ("&gt;", ">"), ("&amp;", "&"))


def slack_decoded(text: str) -> str:
    """A channel message's text as typed: Slack encodes `&`, `<` and `>` in message text (the bot
    decodes command text when it arrives), and decoding twice would turn a typed `&lt;` into `<`."""
    if "&" not in text:
        return text
    for entity, char in _SLACK_ENTITIES:
        text = text.replace(entity, char)
    return text


def slack_plain(text: str | None, names: Mapping[str, str] | None = None) -> str:
    """`<@U1>` → `@alice`, `<#C1|ops>` → `#ops`, `<url|label>` → `label (url)`; `text` is as typed
    (no entity is decoded: `&amp;` someone typed stays `&amp;`)."""
    if not text:
        return ""
    if "<" not in text:
        return text
    names = names or {}

    def tag(match: re.Match[str]) -> str:
        body = match.group(1)
        target, _, label = body.partition("|")
        if target.startswith("@"):
            uid = target[1:]
            return "@" + (names.get(uid) or label.lstrip("@") or uid)
        if target.startswith("#"):
            return "#" + (label or target[1:])
        if target.startswith("!subteam^"):
            return label or "@" + target.removeprefix("!subteam^")
        if target.startswith("!"):
            return label or "@" + target[1:].split("^")[0]
        if not re.match(r"(?:https?|mailto|tel|slack):", target, re.IGNORECASE):
            return match.group(0)  # not Slack markup: a literal `<b>` from an alert or the CLI
        if label and label.rstrip("/") != _SCHEME.sub("", target).rstrip("/"):
            return f"{label} ({target})"
        # Slack's own link of an address typed bare (`<http://x.io|x.io>`, `<mailto:a@x.io|a@x.io>`): once.
        return target if target.lower().startswith("http") else (label or target)

    return _SLACK_TAG.sub(tag, text)


def user_label(user: str | None, names: Mapping[str, str] | None = None) -> str:
    """A Slack user ID as `@name` (or `@U123` without a name); other actors (`alertmanager`) as given."""
    if not user:
        return "—"
    user = user.strip()
    if user.startswith("<@") and user.endswith(">"):
        return slack_plain(user, names)
    name = (names or {}).get(user)
    if name:
        return "@" + name
    if USER_ID.fullmatch(user):
        return "@" + user
    return user


# --- Markdown ---------------------------------------------------------------------------------

# Always escaped: they open code, emphasis, links, raw HTML, tables or strikethrough anywhere.
_MD_ALWAYS = re.compile(r"([\\`*\[\]<>|~])")
# `_` opens emphasis only at a word boundary (CommonMark ignores intraword underscores).
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# An `&` that starts an entity (`&amp;`, `&#60;`) would be decoded by a renderer.
_MD_ENTITY = re.compile(r"&(?=#?[0-9A-Za-z]+;)")
# What makes a line a heading, quote, list item or thematic break when it comes first.
_MD_LINE_START = re.compile(r"^(#+|>|[-+=]|\d+(?=[.)]))")
_MD_CLOSING_HASHES = re.compile(r"(\s)(#+)$")


@functools.lru_cache(maxsize=4096)
def _md_escape_line(line: str) -> str:
    line = line.strip()
    line = _MD_ALWAYS.sub(r"\\\1", line)
    line = _MD_UNDERSCORE.sub(r"\\_", line)
    line = _MD_ENTITY.sub(r"\\&", line)
    match = _MD_LINE_START.match(line)
    if match:
        token = match.group(1)
        if token[0].isdigit():
            # `1. text` → `1\. text`
            line = token + "\\" + line[len(token) :]
        elif token[0] == "#":
            line = "\\#" * len(token) + line[len(token) :]
        else:
            line = "\\" + line
    return _MD_CLOSING_HASHES.sub(lambda m: m.group(1) + "\\#" * len(m.group(2)), line)


_MD_PLAIN = re.compile(r"[0-9A-Za-z ,:;'\"()/?@%$.→—…]*")


def md_inline(text: str | None, names: Mapping[str, str] | None = None) -> str:
    """One line of Markdown, safe in a heading, a list item or a table cell."""
    plain = slack_plain(text, names)
    if _MD_PLAIN.fullmatch(plain) and not plain[:1].isdigit() and not plain.startswith(" "):
        return plain  # nothing to escape (the common case): skip the substitutions
    return _md_escape_line(" ".join(plain.split()))


# A Slack code block: what is between ``` fences, on lines of their own or not. Kept as written (its
# indentation is the point of a stack trace or a config snippet), never escaped line by line.
_CODE = re.compile(r"```(.*?)```", re.DOTALL)


def _lines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def _parts(plain: str) -> list[tuple[bool, str]]:
    """`plain` as (is code, text) in order: Slack's ``` code blocks apart from the prose around them.
    An empty code block is dropped; an unclosed fence is prose (escaped like the rest)."""
    parts: list[tuple[bool, str]] = []
    last = 0
    for match in _CODE.finditer(plain):
        parts.append((False, plain[last : match.start()]))
        code = match.group(1).strip("\n")
        if code.strip():
            parts.append((True, code))
        last = match.end()
    parts.append((False, plain[last:]))
    return parts


def _md_paragraphs(prose: str) -> list[str]:
    paragraphs: list[list[str]] = [[]]
    for raw in prose.split("\n"):
        line = _md_escape_line(" ".join(raw.split()))
        if line:
            paragraphs[-1].append(line)
        elif paragraphs[-1]:
            paragraphs.append([])
    return ["\\\n".join(lines) for lines in paragraphs if lines]


def _md_fence(code: str) -> str:
    """A fenced code block: the code holds no ``` (its end is the first one), so it cannot close the fence."""
    return f"```\n{code}\n```"


def md_block(text: str | None, names: Mapping[str, str] | None = None) -> str:
    """Several lines of Markdown: paragraphs kept, line breaks kept as hard breaks, structure escaped;
    a Slack ``` code block becomes a fenced code block, its lines as written."""
    out: list[str] = []
    for code, part in _parts(_lines(slack_plain(text, names))):
        out += [_md_fence(part)] if code else _md_paragraphs(part)
    return "\n\n".join(out)


def safe_url(value: str | None) -> str:
    """An http(s) link made safe inside Markdown `(...)` and HTML `href`; anything else is dropped."""
    if not value:
        return ""
    value = value.strip()
    if not re.match(r"https?://", value, re.IGNORECASE):
        return ""
    return quote(value, safe="/:?#[]@!$&'*+,;=%-._~")


# --- HTML -------------------------------------------------------------------------------------


def html_block(text: str | None, names: Mapping[str, str] | None = None) -> Markup:
    """Escaped text with its line breaks as `<br>`; a Slack ``` code block as `<pre><code>`, as written."""
    out: list[Markup] = []
    for code, part in _parts(_lines(slack_plain(text, names)).strip()):
        if code:
            out.append(Markup("<pre><code>{}</code></pre>").format(part))
        elif part.strip():
            out.append(Markup("<br>\n").join(escape(line) for line in part.strip().split("\n")))
    return Markup("\n").join(out)


# --- times ------------------------------------------------------------------------------------


def fmt_datetime(value: datetime | None) -> str:
    return utc(value).strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def fmt_timestamp(value: datetime | None) -> str:
    """Table form, the column header says UTC."""
    return utc(value).strftime("%Y-%m-%d %H:%M:%S") if value is not None else "—"


def fmt_duration(value: timedelta | None) -> str:
    return format_duration(value) if value is not None else "—"


def fmt_offset(value: timedelta | None) -> str:
    """`T+3m 12s`: time since the declaration."""
    if value is None:
        return "—"
    if value < timedelta(0):
        return "T-" + format_duration(-value)
    return "T+" + format_duration(value)


def join_users(users: Iterable[str | None], names: Mapping[str, str] | None = None) -> str:
    labels = [user_label(u, names) for u in users if u]
    return ", ".join(labels) if labels else "—"
