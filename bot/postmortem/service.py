"""Build a post-mortem from the database and render it with Jinja2.

`build` reads the incident, its whole timeline (one query, ordered by time then id), its
action items (one query) and the sections people wrote (one query), and computes everything in
one pass over the events, so an incident with 10,000 events costs four queries. `render` fills a
template; the Jinja2 environment for each (format, templates folder) is built once and cached.

Timeline `data` keys read here, per kind (other domains write them; missing keys fall back to
the event's text):
    declared       severity, service
    status         old, new
    severity       old, new
    role           role, user, previous
    ack            first
    page           action (sent | cancelled | replanned), level, name, sent_to, failed {user: error},
                   repeat, late, late_seconds
    deploy         action (restart | rollback | redeploy), service, outcome | status, deployment_id
    playbook       playbook_id, title, status (started, switched, completed)
    playbook_step  playbook_id, step_title | step_id, status (done, skipped, "<action> succeeded"), output
    alert / health service
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal, cast

import jinja2
from sqlalchemy import Row, String, Table, select, type_coerce
from sqlmodel import col
from sqlmodel import select as sm_select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.clock import SystemClock, utc
from bot.config import Severity
from bot.exceptions import ConfigError, NotFound, UsageError
from bot.incidents.models import ActionItem, Incident
from bot.postmortem import sections
from bot.postmortem import text as fmt
from bot.postmortem.data import (
    Action,
    ActionItemRow,
    Escalation,
    Event,
    Metric,
    Note,
    PlaybookStep,
    PostmortemData,
    Responder,
)
from bot.timeline.models import Kind, TimelineEvent

Format = Literal["markdown", "html"]
FORMATS: tuple[str, ...] = ("markdown", "html")
TEMPLATES = {"markdown": "postmortem.md.j2", "html": "postmortem.html.j2"}
EXTENSIONS = {"markdown": "md", "html": "html"}
BUILTIN_TEMPLATES = Path(__file__).parent / "templates"

# Kinds that change the incident's state: always on the key timeline.
_STATE_KINDS = {Kind.DECLARED, Kind.SEVERITY, Kind.ROLE, Kind.RESOLVED}


def _first(data: dict[str, Any], *keys: str) -> Any:
    for key in keys:
        value = data.get(key)
        if value not in (None, "", []):
            return value
    return None


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple, set)):
        return [str(v) for v in value if v]
    return [str(value)]


def _mention(user: Any) -> str:
    """Slack markup for a user, so the renderers show names consistently."""
    text = str(user)
    return text if text.startswith("<") else f"<@{text}>"


_LABELS: dict[str, str] = {
    Kind.REMINDER: "Reminder",
    Kind.HEALTH: "Health",
    Kind.ALERT: "Alert",
    Kind.POSTMORTEM: "Post-mortem",
    Kind.CHAT_ERROR: "Slack error",
    Kind.SETUP: "Setup",
    "action_item_status": "",  # its text says it all: "Follow-up done: …"
}


def describe(kind: str, text: str, data: dict[str, Any]) -> str:
    """A one-line account of an event, in Slack markup (the renderer turns it into plain text)."""
    if kind == Kind.MESSAGE:  # most of a long timeline: first, and as it is
        return text
    if kind == Kind.DECLARED:
        severity = data.get("severity")
        return f"Declared{f' as {severity}' if severity else ''}: {text}" if text else "Declared"
    if kind == Kind.STATUS:
        old, new = data.get("old"), data.get("new")
        head = f"Status {old} → {new}" if old and new and old != new else f"Status update ({new or 'unknown'})"
        return f"{head}: {text}" if text else head
    if kind == Kind.SEVERITY:
        old, new = data.get("old"), data.get("new")
        return f"Severity {old} → {new}" if old and new else f"Severity: {text}"
    if kind == Kind.ROLE:
        role, user = data.get("role"), data.get("user")
        return f"{role.capitalize()}: {_mention(user)}" if role and user else f"Role: {text}"
    if kind == Kind.ACK:
        head = "Acknowledged" if data.get("first", True) else "Acknowledged again"
        return head + (" for " + ", ".join(_mention(u) for u in _as_list(data["for"])) if data.get("for") else "")
    if kind == Kind.RESOLVED:
        return f"Resolved: {text}" if text else "Resolved"
    if kind == Kind.NOTE:
        return f"Note: {text}"
    if kind == Kind.ACTION_ITEM:
        owner = data.get("owner")
        return f"Action item: {text}" + (f" (owner {_mention(owner)})" if owner else "")
    if kind == Kind.PAGE:
        action = data.get("action", "sent")
        if action != "sent":
            return text or f"Escalation {action}"
        who = ", ".join(_mention(u) for u in _paged(data))
        number, name = data.get("level"), _first(data, "level_name", "name")
        level = ", ".join(str(p) for p in (number, name) if p is not None)
        head = "Paged" + (f" {who}" if who else " nobody") + (f" (level {level})" if level else "")
        if data.get("repeat"):
            head += f", repeat {data['repeat']}"
        if data.get("late"):
            head += " — late"
        failed = _failed(data)
        if failed:
            head += " — could not reach " + ", ".join(failed)
        return head
    if kind == Kind.DEPLOY:
        action = _first(data, "action", "operation") or "deploy"
        service = data.get("service")
        outcome = _first(data, "outcome", "status", "result")
        head = f"{str(action).capitalize()}{f' of {service}' if service else ''}"
        head += f": {outcome}" if outcome else ""
        return f"{head} — {text}" if text else head
    if kind == Kind.PLAYBOOK:
        name = _first(data, "title", "playbook", "playbook_id")
        return text or (f"Playbook {name}" if name else "Playbook")
    if kind == Kind.PLAYBOOK_STEP:
        if text:
            return text
        step = _first(data, "step_title", "title", "step", "step_id")
        status = _first(data, "status", "outcome")
        head = f"Step {step}" if step else "Playbook step"
        return f"{head}: {status}" if status else head
    label = _LABELS.get(kind, kind.replace("_", " ").capitalize())
    if not label or text.lower().startswith(label.lower()):
        return text  # "Health: 2 healthy" and "Post-mortem draft shared" say what they are already
    return f"{label}: {text}" if text else label


def _add_action(actions: list[Action], running: dict[tuple[str, str], int], action: Action) -> None:
    """A restart is one action: its `started` event and its outcome become one row (started when it
    started, with how it ended), not two."""
    key = (action.action, action.service)
    if action.outcome == "started":
        running[key] = len(actions)
        actions.append(action)
        return
    index = running.pop(key, None)
    if index is None:
        actions.append(action)
        return
    started = actions[index]
    actions[index] = Action(
        at=started.at,
        offset=started.offset,
        action=action.action,
        service=action.service,
        outcome=action.outcome,
        actor=started.actor or action.actor,
        detail=action.detail,
    )


def _level(data: dict[str, Any]) -> str:
    number, name = data.get("level"), _first(data, "level_name", "name")
    if number is not None and name:
        return f"{number} ({name})"
    return str(number if number is not None else name or "")


def _paged(data: dict[str, Any]) -> list[str]:
    """Who a page reached (escalation writes `sent_to`)."""
    return _as_list(_first(data, "sent_to", "targets", "users", "user", "target"))


def _page_note(text: str, *, sent: bool, via: list[str], failed: list[str]) -> str:
    """What the level and `who` do not say: another service that took the page, who it missed."""
    notes = [*(["via " + ", ".join(via)] if via else []), *(["could not reach " + ", ".join(failed)] if failed else [])]
    if notes:
        return "; ".join(notes)
    return "" if sent and text.startswith("Paged level") else text


def _failed(data: dict[str, Any]) -> list[str]:
    """`{"U1": "user_not_found"}` → `["<@U1> (user_not_found)"]`."""
    failed = data.get("failed")
    if isinstance(failed, dict):
        return [f"{_mention(user)} ({error})" for user, error in failed.items()]
    return [_mention(user) for user in _as_list(failed)]


def _late(data: dict[str, Any]) -> str:
    if not data.get("late"):
        return ""
    late_by = _first(data, "late_seconds", "late_by")
    if isinstance(late_by, (int, float)) and late_by > 0:
        return f"sent {fmt.fmt_duration(timedelta(seconds=late_by))} late"
    return "sent late"


def _json(raw: Any) -> dict[str, Any]:
    """SQLite gives the text; psycopg decodes JSON itself."""
    if isinstance(raw, str):
        value = json.loads(raw) if raw not in ("", "{}", "null") else {}
    else:
        value = raw
    return value if isinstance(value, dict) else {}


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
    data = await asyncio.to_thread(_assemble, incident, rows, items, generated_at=generated_at)
    data.written = written
    return data


def _assemble(
    incident: Incident, rows: Sequence[Sequence[Any]], items: Sequence[Row[Any]], *, generated_at: datetime
) -> PostmortemData:
    assert incident.id is not None
    incident_id = incident.id
    declared_at = utc(incident.declared_at)
    events: list[Event] = []
    key_events: list[Event] = []
    escalations: list[Escalation] = []
    actions: list[Action] = []
    running: dict[tuple[str, str], int] = {}  # (action, service) → index in `actions` of one still `started`
    steps: list[PlaybookStep] = []
    notes: list[Note] = []
    services: list[str] = [incident.service] if incident.service else []
    first_alert: Event | None = None
    first_ack: Event | None = None
    first_monitoring: Event | None = None
    severity_at_declaration: str | None = None
    pages = 0
    activity: dict[str, list[Any]] = {}  # actor -> [first seen, count]
    role_holders: list[tuple[str, str]] = []  # (role, user) in order of assignment
    paged: set[str] = set()
    playbook_titles: dict[str, str] = {}
    impact_set: str | None = None  # who last corrected the impact start (`/incident started`)

    for row in rows:
        ev_id, at, kind, actor, text, key, permalink, data = row
        at = utc(at)
        data = _json(data)
        text = text or ""
        event = Event(
            id=ev_id,
            at=at,
            offset=at - declared_at,
            kind=kind,
            actor=actor,
            text=text,
            summary=describe(kind, text, data),
            key=bool(key),
            permalink=permalink,
            data=data,
        )
        events.append(event)
        if actor:
            seen = activity.get(actor)
            if seen is None:
                activity[actor] = [at, 1]
            else:
                seen[1] += 1
        if kind == "impact":
            impact_set = actor or "someone"
        service = data.get("service")
        if service and kind in (Kind.DECLARED, Kind.DEPLOY, Kind.HEALTH, Kind.ALERT) and service not in services:
            services.append(str(service))

        state_change = kind in _STATE_KINDS
        if kind == Kind.STATUS:
            state_change = data.get("old") != data.get("new")
            if data.get("new") == "monitoring" and first_monitoring is None:
                first_monitoring = event
        elif kind == Kind.ACK:
            state_change = data.get("first", True) is not False
            if first_ack is None:
                first_ack = event
            escalations.append(
                Escalation(
                    at=at,
                    offset=event.offset,
                    kind="ack",
                    level="",
                    who=[actor] if actor else [],
                    late="",
                    text="first acknowledgement" if state_change else "acknowledged again",
                )
            )
        elif kind == Kind.PAGE:
            action = str(data.get("action", "sent"))
            sent = action == "sent"
            who = _paged(data) if sent else []
            via = _as_list(data.get("via")) if sent else []  # "PagerDuty" took it
            if who or via:  # a page that reached nobody is shown, not counted
                pages += 1
                paged.update(who)
            failed = _failed(data)
            escalations.append(
                Escalation(
                    at=at,
                    offset=event.offset,
                    kind="page" if sent else {"cancelled": "stopped", "replanned": "re-planned"}.get(action, action),
                    level=_level(data),
                    who=who,
                    late=_late(data),
                    text=_page_note(text, sent=sent, via=via, failed=failed),
                )
            )
        elif kind == Kind.DEPLOY:
            deploy = Action(
                at=at,
                offset=event.offset,
                action=str(_first(data, "action", "operation") or "deploy"),
                service=str(data.get("service") or incident.service or "—"),
                outcome=str(_first(data, "outcome", "status", "result") or "unknown"),
                actor=actor,
                detail=text,
            )
            _add_action(actions, running, deploy)
        elif kind in (Kind.PLAYBOOK, Kind.PLAYBOOK_STEP):
            is_step = kind == Kind.PLAYBOOK_STEP
            playbook_id = str(_first(data, "playbook_id", "playbook") or incident.playbook_id or "—")
            if not is_step and data.get("title"):
                playbook_titles.setdefault(playbook_id, str(data["title"]))
            steps.append(
                PlaybookStep(
                    at=at,
                    offset=event.offset,
                    playbook=playbook_titles.get(playbook_id, playbook_id),
                    step=str(_first(data, "step_title", "title", "step", "step_id") or "—") if is_step else "—",
                    status=str(_first(data, "status", "outcome") or ("recorded" if is_step else "started")),
                    actor=actor,
                    detail=text or str(data.get("output") or ""),
                )
            )
        elif kind == Kind.NOTE:
            notes.append(Note(at=at, actor=actor, text=text))
        elif kind == Kind.ALERT and first_alert is None:
            first_alert = event
        elif kind == Kind.DECLARED and severity_at_declaration is None:
            severity_at_declaration = data.get("severity")
        elif kind == Kind.SEVERITY and severity_at_declaration is None:
            severity_at_declaration = data.get("old")
        elif kind == Kind.ROLE and data.get("role"):
            for holder in (data.get("previous"), data.get("user")):
                if holder:
                    role_holders.append((str(data["role"]), str(holder)))
        if key or state_change:
            key_events.append(event)

    acknowledged_at = incident.acknowledged_at or (first_ack.at if first_ack else None)
    acknowledged_by = incident.acknowledged_by or (first_ack.actor if first_ack else None)
    mitigated_at = incident.mitigated_at or (first_monitoring.at if first_monitoring else None)
    mitigated_note = ""
    if mitigated_at is not None and first_monitoring is None and incident.resolved_at is not None:
        if utc(mitigated_at) == utc(incident.resolved_at):
            mitigated_note = "taken as the resolve time: there was no `monitoring` status update"

    def metric(name: str, at: datetime | None, missing: str, by: str | None = None, note: str = "") -> Metric:
        at = utc(at) if at is not None else None
        return Metric(name=name, at=at, after=at - declared_at if at else None, missing=missing, by=by, note=note)

    status = str(incident.status)
    resolved_at = utc(incident.resolved_at) if incident.resolved_at else None
    impact_start, impact_from = _impact(incident, impact_set)
    return PostmortemData(
        ref=incident.ref,
        number=incident_id,
        title=incident.title,
        status=status,
        severity=str(incident.severity),
        severity_label=Severity(incident.severity).label,
        severity_at_declaration=str(severity_at_declaration or incident.severity),
        services=services,
        description=incident.description or "",
        playbook=incident.playbook_id,
        channel_id=incident.channel_id,
        channel_name=incident.channel_name,
        channel_url=f"https://slack.com/app_redirect?channel={incident.channel_id}" if incident.channel_id else None,
        generated_at=generated_at,
        declared_at=declared_at,
        declared_by=incident.declared_by,
        impact_start=impact_start,
        impact_from=impact_from,
        impact_set_by=impact_set if impact_from == "set by" else None,
        resolved_by=incident.resolved_by,
        resolution=incident.resolution or "",
        end=resolved_at,
        duration=resolved_at - impact_start if resolved_at else None,
        ongoing_for=None if resolved_at else generated_at - impact_start,
        first_event=events[0] if events else None,
        first_alert=first_alert,
        detected=Metric(
            name="Impact started",
            at=impact_start,
            after=declared_at - impact_start,
            missing="",
            by=impact_set if impact_from == "set by" else None,
            note=impact_from,
        ),
        declared=metric("Declared", declared_at, "not declared", incident.declared_by),
        acknowledged=metric("First acknowledged", acknowledged_at, "not acknowledged", acknowledged_by),
        mitigated=metric("Mitigated", mitigated_at, "not mitigated", None, mitigated_note),
        resolved=metric("Resolved", resolved_at, "not resolved yet", incident.resolved_by),
        commander=incident.commander,
        comms=incident.comms,
        scribe=incident.scribe,
        responders=_responders(incident, activity, role_holders, acknowledged_by, paged),
        escalations=escalations,
        pages=pages,
        key_events=key_events,
        events=events,
        actions=actions,
        playbook_steps=steps,
        notes=notes,
        action_items=[
            ActionItemRow(
                id=item.id,
                text=item.text,
                owner=item.owner,
                done=bool(item.done),
                created_by=item.created_by,
                created_at=utc(item.created_at),
                issue_url=item.issue_url,
                issue_key=item.issue_key,
            )
            for item in items
        ],
    )


def _impact(incident: Incident, impact_set: str | None) -> tuple[datetime, str]:
    """The impact start and where it came from, for the post-mortem's impact table."""
    if incident.impact_started_at is None:
        return utc(incident.declared_at), "declared"
    return utc(incident.impact_started_at), "set by" if impact_set is not None else "first alert"


def _responders(
    incident: Incident,
    activity: dict[str, list[Any]],
    role_holders: list[tuple[str, str]],
    acknowledged_by: str | None,
    paged: set[str],
) -> list[Responder]:
    """People (Slack users, not bots or alert sources) who held a role or did something,
    ordered by their first action."""
    roles: dict[str, list[str]] = {}

    def give(user: str | None, role: str) -> None:
        if user and fmt.USER_ID.fullmatch(user) and role not in roles.setdefault(user, []):
            roles[user].append(role)

    current = {"commander": incident.commander, "comms": incident.comms, "scribe": incident.scribe}
    for role, user in current.items():
        give(user, role)
    for role, user in role_holders:
        if current.get(role) != user:
            give(user, f"{role} (handed over)")
    give(incident.declared_by, "declared")
    give(acknowledged_by, "acknowledged first")
    give(incident.resolved_by, "resolved")
    for actor in activity:
        if fmt.USER_ID.fullmatch(actor):
            roles.setdefault(actor, [])
    for user in sorted(paged):
        if user in roles:
            give(user, "paged")

    far = datetime.max.replace(tzinfo=utc(incident.declared_at).tzinfo)

    def first_seen(user: str) -> datetime | None:
        seen = activity.get(user)
        return seen[0] if seen else None

    ordered = sorted(roles, key=lambda u: (first_seen(u) or far, u))
    return [
        Responder(user=u, roles=roles[u], first_seen=first_seen(u), events=activity.get(u, [None, 0])[1])
        for u in ordered
    ]


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

    env.filters.update(
        t=t,
        block=block,
        user=user,
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
