"""Build a post-mortem from the database and render it with Jinja2.

`build` reads the incident, its whole timeline (one query, ordered by time then id), its
action items (one query) and the sections people wrote (one query), and computes everything in
one pass over the events (bot.postmortem.assemble: one small function per event kind, reading the
typed payloads of bot.timeline.events), so an incident with 10,000 events costs four queries.
`render` fills a template; the Jinja2 environment for each (format, templates folder) is built
once and cached.
"""

from __future__ import annotations

import asyncio
import functools
import re
from collections.abc import Iterable, Mapping
from contextvars import ContextVar
from datetime import datetime
from pathlib import Path
from typing import Any, Literal, cast

import jinja2
from sqlalchemy import String, Table, select, type_coerce
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import SystemClock, utc
from bot.exceptions import ConfigError, NotFound, UsageError
from bot.incidents.models import ActionItem, Incident
from bot.postmortem import sections
from bot.postmortem import text as fmt
from bot.postmortem.assemble import assemble
from bot.postmortem.data import Event, PostmortemData
from bot.timeline import shown
from bot.timeline.models import TimelineEvent

Format = Literal["markdown", "html"]
FORMATS: tuple[str, ...] = ("markdown", "html")
TEMPLATES = {"markdown": "postmortem.md.j2", "html": "postmortem.html.j2"}
EXTENSIONS = {"markdown": "md", "html": "html"}
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"
MAX_NAME_LOOKUPS = 50
_MENTION = re.compile(r"<@([UW][A-Z0-9]+)")

_TIMELINE = cast(Table, TimelineEvent.__table__)  # type: ignore[attr-defined]
_ITEMS = cast(Table, ActionItem.__table__)  # type: ignore[attr-defined]


async def build(session: AsyncSession, *, incident_id: int, now: datetime | None = None) -> PostmortemData:
    """Everything the post-mortem says, computed from the database. `now` stamps the draft."""
    incident = await session.get(Incident, incident_id)
    if incident is None:
        raise NotFound(
            f"There is no incident INC-{incident_id} that you can see. `/incident list` shows the open incidents."
        )
    generated_at = utc(now) if now is not None else SystemClock().now()

    conn = await session.connection()
    t = _TIMELINE.c
    rows = (
        await conn.execute(
            # The JSON column as raw text: most events (chat messages) have `{}`, not worth a json.loads each.
            select(t.id, t.at, t.kind, t.actor, t.text, t.key, t.permalink, type_coerce(t.data, String))
            .where(t.incident_id == incident_id)
            .order_by(t.at, t.id)
        )
    ).all()
    items = (await conn.execute(select(_ITEMS).where(_ITEMS.c.incident_id == incident_id).order_by(_ITEMS.c.id))).all()
    written = await sections.texts(session, incident_id=incident_id)
    # The one pass over a big timeline is ~100 ms of CPU per 10,000 events: keep it off the event loop.
    data = await asyncio.to_thread(assemble, incident, rows, items, generated_at=generated_at)
    data.written = written
    return data


async def list_action_items(session: AsyncSession, *, incident_id: int, open_only: bool = False) -> list[ActionItem]:
    """An incident's action items, oldest first; `open_only` for the ones still to do."""
    query = sm_select(ActionItem).where(ActionItem.incident_id == incident_id)
    if open_only:
        query = query.where(col(ActionItem.done).is_(False))
    return list((await session.exec(query.order_by(col(ActionItem.id)))).all())


# --- rendering ----------------------------------------------------------------------------------


# The user names of the document being rendered; set by `render`, read by the filters (cheaper than
# a context lookup in every one of the ~40,000 filter calls of a 10,000-event timeline).
_NAMES: ContextVar[Mapping[str, str] | None] = ContextVar("postmortem_user_names", default=None)


def _filters(fmt_name: str, env: jinja2.Environment) -> None:
    """The same filter names in both formats; each escapes for its own output."""

    def opt(value: Any) -> str | None:
        return None if value is None else str(value)

    if fmt_name == "markdown":

        def t(value: Any) -> str:
            return fmt.md_inline(opt(value), _NAMES.get())

        def block(value: Any) -> str:
            return fmt.md_block(opt(value), _NAMES.get())

        def user(value: str | None) -> str:
            return fmt.md_inline(fmt.user_label(value, _NAMES.get()))

        def users(value: Iterable[str | None]) -> str:
            return fmt.md_inline(fmt.join_users(value, _NAMES.get()))

    else:

        def t(value: Any) -> str:
            return fmt.slack_plain(opt(value), _NAMES.get())

        def block(value: Any) -> str:
            return fmt.html_block(opt(value), _NAMES.get())

        def user(value: str | None) -> str:
            return fmt.user_label(value, _NAMES.get())

        def users(value: Iterable[str | None]) -> str:
            return fmt.join_users(value, _NAMES.get())

    def author(event: Event) -> str:
        return user(shown.author(event.kind, event.actor))  # a message kept without its author says so

    env.filters.update(
        t=t,
        block=block,
        user=user,
        author=author,
        users=users,
        url=fmt.safe_url,
        dt=fmt.fmt_datetime,
        ts=fmt.fmt_timestamp,
        dur=fmt.fmt_duration,
        offset=fmt.fmt_offset,
    )


@functools.lru_cache(maxsize=32)
def environment(fmt_name: str, templates_dir: str | None) -> jinja2.Environment:
    """One environment per (format, folder). A user's folder comes first, so any template can be
    overridden; `builtin/postmortem.md.j2` stays reachable for `{% extends %}`."""
    builtin = jinja2.FileSystemLoader(str(BUILTIN_TEMPLATES))
    loaders: list[jinja2.BaseLoader] = []
    if templates_dir is not None:
        loaders.append(jinja2.FileSystemLoader(templates_dir))
    loaders += [jinja2.PrefixLoader({"builtin": builtin}), builtin]
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader(loaders),
        autoescape=fmt_name == "html",
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        auto_reload=True,
    )
    _filters(fmt_name, env)
    return env


def check_format(value: str) -> Format:
    name = (value or "").strip().lower()
    name = {"md": "markdown", "htm": "html"}.get(name, name)
    if name not in FORMATS:
        raise UsageError(f"unknown post-mortem format {value!r}: use markdown or html", usage="--format markdown|html")
    return name  # type: ignore[return-value]


def render(
    data: PostmortemData, *, fmt: str = "markdown", templates_dir: Path | str | None = None, fragment: bool = False
) -> str:
    """The post-mortem as Markdown or HTML. Template mistakes become a ConfigError naming file and line.
    `fragment`: HTML without the page around it (no <head>, no inline style), for the dashboard."""
    fmt_name = check_format(fmt)
    folder: str | None = None
    if templates_dir is not None:
        path = Path(templates_dir)
        if not path.is_dir():
            raise ConfigError(f"postmortem.templates_dir: {path} is not a directory")
        folder = str(path.resolve())
    env = environment(fmt_name, folder)
    name = TEMPLATES[fmt_name]
    token = _NAMES.set(data.user_names or {})
    try:
        return env.get_template(name).render(pm=data, fragment=fragment)
    except jinja2.TemplateSyntaxError as exc:
        raise ConfigError(f"post-mortem template {exc.filename or exc.name}, line {exc.lineno}: {exc.message}") from exc
    except jinja2.TemplateError as exc:
        raise ConfigError(f"post-mortem template {_template_position(exc, name)}: {exc}") from exc
    finally:
        _NAMES.reset(token)


def _template_position(exc: BaseException, default: str) -> str:
    """`postmortem.md.j2, line 12` from the traceback Jinja rewrites to point into the template."""
    where = default
    tb = exc.__traceback__
    while tb is not None:
        filename = tb.tb_frame.f_code.co_filename
        if filename.endswith(".j2"):
            where = f"{Path(filename).name}, line {tb.tb_lineno}"
        tb = tb.tb_next
    return where


def filename(data: PostmortemData, *, fmt: str = "markdown") -> str:
    return f"{data.ref}-postmortem.{EXTENSIONS[check_format(fmt)]}"


def people(data: PostmortemData) -> list[str]:
    """The Slack users the document names, most prominent first (the name lookups are capped)."""
    seen: dict[str, None] = {}

    def add(values: Iterable[str | None]) -> None:
        for value in values:
            if value and fmt.USER_ID.fullmatch(value):
                seen.setdefault(value, None)

    add([data.commander, data.comms, data.scribe, data.declared_by, data.acknowledged.by, data.resolved_by])
    add(r.user for r in data.responders)
    for escalation in data.escalations:
        add(escalation.who)
    add(i.owner for i in data.action_items)
    add(i.created_by for i in data.action_items)
    for event in data.events:
        if len(seen) >= MAX_NAME_LOOKUPS:
            break
        add([event.actor])
        if "<@" in event.summary:
            add(_MENTION.findall(event.summary))
    return list(seen)[:MAX_NAME_LOOKUPS]
