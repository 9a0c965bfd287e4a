"""The dashboard's pages (GET): incident list, incident, post-mortem, stats, on-call.

Thin like the Slack listeners: parse the request, call domain functions, render. Every incident
goes through `can_see` first; one the person may not see is answered exactly like one that does
not exist (404), and is left out of the list and its totals.
"""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import Iterable
from datetime import UTC, date, datetime, time, timedelta

from aiohttp import web
from markupsafe import Markup
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.escalation import oncall as oncall_rules
from bot.followups import flows as followup_flows
from bot.incidents import search
from bot.incidents.grammar import clean
from bot.incidents.models import Incident
from bot.playbooks import checklist
from bot.playbooks import runs as playbook_runs
from bot.postmortem import flows as postmortem_flows
from bot.postmortem import sections as pm_sections
from bot.postmortem import service as postmortem
from bot.postmortem import stats as pm_stats
from bot.postmortem import trends
from bot.postmortem.data import SECTIONS
from bot.web import charts, render, timeline
from bot.web.auth import Dashboard, signed_in
from bot.web.session import Person

PAGE_SIZE = 50
NAMES_TIMEOUT = 3.0
# Closed issues are checked before follow-ups are shown, but a slow tracker must not hold the page.
TRACKER_TIMEOUT = 2.0
ONCALL_AHEAD = timedelta(weeks=4)
# ASCII digits only (`\d` would take `INC-١` for INC-1), and few enough to fit the databases' integers.
_REF = re.compile(r"(?:inc-?)?([0-9]{1,9})", re.IGNORECASE)
_ID = re.compile(r"[0-9]{1,9}")


class NotVisible(Exception):
    """No such incident, or one this person may not see: the same answer either way."""


class Pages:
    def __init__(self, dash: Dashboard) -> None:
        self.dash = dash
        self.deps = dash.deps

    async def names(self, user_ids: Iterable[str | None]) -> dict[str, str]:
        chat = self.deps.postmortem_chat
        wanted = [u for u in dict.fromkeys(user_ids) if u]
        if chat is None or not wanted:
            return {}
        try:  # names are a nicety: a slow Slack must not hold the page (ids are shown instead)
            lookup = chat.user_names(user_ids=wanted[: postmortem_flows.MAX_NAME_LOOKUPS])
            return dict(await asyncio.wait_for(lookup, timeout=NAMES_TIMEOUT))
        except TimeoutError:
            return {}

    async def incident(self, ref: str, person: Person) -> Incident:
        match = _REF.fullmatch(ref)
        if match is None:
            raise NotVisible
        async with self.deps.db.session() as session:
            incident = await session.get(Incident, int(match.group(1)))
        if incident is None or not await self.deps.incident_access.can_see(person=person.user_id, incident=incident):
            raise NotVisible
        return incident

    async def not_found(self, person: Person, ref: str) -> web.Response:
        # The ref is named only when it is one: a link could otherwise make the page say any sentence.
        shown = ref if _REF.fullmatch(ref) else ""
        return await render.page("not_found.html", status=404, person=person, ref=shown, nav="")

    async def channel_url(self, channel_id: str | None) -> str | None:
        if not channel_id:
            return None
        try:
            base = (await self.dash.slack.workspace()).url
        except Exception:
            base = ""
        if base.startswith("https://"):
            return f"{base.rstrip('/')}/archives/{channel_id}"
        return f"https://slack.com/app_redirect?channel={channel_id}"

    # --- the list -----------------------------------------------------------------------------

    async def incidents(self, request: web.Request, person: Person) -> web.StreamResponse:
        q = request.query
        problems: list[str] = []
        filters = search.Filters(
            status=_choice(q.get("status", ""), search.STATUSES, problems, "Status", "every status"),
            severity=_choice(q.get("severity", ""), search.SEVERITIES, problems, "Severity", "every severity"),
            # Control characters dropped: PostgreSQL text cannot even hold NUL (a 500, not "no match").
            service=clean(q.get("service", "")).strip()[:100],
            since=_day(q.get("from", ""), problems, "From"),
            until=_day(q.get("to", ""), problems, "To", next_day=True),
            text=clean(q.get("q", "")).strip()[:200],
        )
        guest = await self.deps.incident_access.is_guest(person=person.user_id)  # before the session: may ask Slack
        found = await search.find(
            db=self.deps.db, access=self.deps.incident_access, person=person.user_id, filters=filters
        )
        visible = found.incidents
        async with self.deps.db.session() as session:
            public_services, checked = await search.service_choices(session, guest=guest)
        seen = await self.deps.incident_access.visible(person=person.user_id, incidents=checked)
        services = sorted(public_services | {i.service for i in seen if i.service})
        pages = max(1, math.ceil(len(visible) / PAGE_SIZE))
        number = min(max(_int(q.get("page"), 1), 1), pages)
        shown = visible[(number - 1) * PAGE_SIZE : number * PAGE_SIZE]
        names = await self.names(i.commander for i in shown)
        query = {k: v for k, v in q.items() if k != "page" and v}
        return await render.page(
            "list.html",
            names=names,
            person=person,
            nav="incidents",
            incidents=shown,
            total=len(visible),
            page=number,
            pages=pages,
            first=(number - 1) * PAGE_SIZE + 1,
            query=query,
            filters=filters,
            raw=q,
            problems=problems,
            truncated=found.truncated,
            statuses=search.STATUSES,
            severities=search.SEVERITIES,
            services=services,
            now=self.deps.clock.now(),
        )

    # --- one incident -------------------------------------------------------------------------

    async def incident_page(self, request: web.Request, person: Person) -> web.StreamResponse:
        ref = request.match_info["ref"]
        try:
            incident = await self.incident(ref, person)
        except NotVisible:
            return await self.not_found(person, ref)
        return await self.show_incident(request, person, incident)

    async def refresh_followups(self, incident: Incident) -> None:
        """A follow-up whose issue was closed is shown done (as in Slack); the stored state if the tracker is slow."""
        await followup_flows.refresh_quietly(self.deps, incident_id=incident.id or 0, within=TRACKER_TIMEOUT)

    async def show_incident(
        self,
        request: web.Request,
        person: Person,
        incident: Incident,
        *,
        status: int = 200,
        issue_problems: dict[int, str] | None = None,
    ) -> web.StreamResponse:
        assert incident.id is not None
        await self.refresh_followups(incident)
        async with self.deps.db.session() as session:
            data = await postmortem.build(session, incident_id=incident.id, now=self.deps.clock.now())
            progress = await self.playbook_progress(session, incident_id=incident.id)
        steps = progress.steps if progress else []
        names = await self.names([*postmortem_flows.people(data), *(s.by for s in steps)])
        key_only = request.query.get("key") == "1"
        key_ids = {e.id for e in data.key_events}
        events = data.key_events if key_only else data.events
        rows = await asyncio.to_thread(timeline.rows, events, key_ids=key_ids, names=names)
        return await render.page(
            "incident.html",
            status=status,
            names=names,
            person=person,
            nav="incidents",
            incident=incident,
            pm=data,
            timeline=rows,
            key_only=key_only,
            channel_url=await self.channel_url(incident.channel_id),
            progress=progress,
            messages=sum(1 for e in data.events if e.kind == "message"),
            tracker=self.deps.issue_tracker is not None,
            issue_problems=issue_problems or {},
        )

    async def playbook_progress(self, session: AsyncSession, *, incident_id: int) -> checklist.Progress | None:
        """The current playbook's checklist (what is done, what is left): the events only say what happened."""
        run = await playbook_runs.current_run(session, incident_id=incident_id)
        if run is None or run.id is None:
            return None
        return await checklist.progress(session, run_id=run.id, config=self.deps.settings.config)

    async def postmortem_page(self, request: web.Request, person: Person) -> web.StreamResponse:
        ref = request.match_info["ref"]
        try:
            incident = await self.incident(ref, person)
        except NotVisible:
            return await self.not_found(person, ref)
        return await self.show_postmortem(request, person, incident)

    async def show_postmortem(
        self,
        request: web.Request,
        person: Person,
        incident: Incident,
        *,
        drafts: dict[str, str] | None = None,
        conflicts: dict[str, pm_sections.EditConflict] | None = None,
        problems: list[str] | None = None,
    ) -> web.StreamResponse:
        assert incident.id is not None
        templates_dir = self.deps.settings.config.postmortem.templates_dir
        await self.refresh_followups(incident)
        async with self.deps.db.session() as session:
            data = await postmortem.build(session, incident_id=incident.id, now=self.deps.clock.now())
            written = await pm_sections.load(session, incident_id=incident.id)
        data.user_names = await self.names([*postmortem_flows.people(data), *(w.updated_by for w in written.values())])
        if request.method == "GET" and request.query.get("format") in ("markdown", "md"):
            document = await asyncio.to_thread(postmortem.render, data, fmt="markdown", templates_dir=templates_dir)
            name = postmortem.filename(data, fmt="markdown")
            return web.Response(
                text=document,
                content_type="text/markdown",
                charset="utf-8",
                headers={**render.HEADERS, "Content-Disposition": f'attachment; filename="{name}"'},
            )
        document = await asyncio.to_thread(
            postmortem.render, data, fmt="html", templates_dir=templates_dir, fragment=True
        )
        return await render.page(
            "postmortem.html",
            status=409 if conflicts else 400 if problems else 200,
            names=data.user_names,
            person=person,
            nav="incidents",
            incident=incident,
            pm=data,
            document=Markup(document),  # the post-mortem renderer escaped every value
            sections=SECTIONS,
            written=written,
            drafts=drafts or {},
            conflicts=conflicts or {},
            problems=problems or [],
            saved=request.query.get("saved") == "1",
        )

    # --- stats and on-call --------------------------------------------------------------------

    async def stats(self, request: web.Request, person: Person) -> web.StreamResponse:
        weeks = min(max(_int(request.query.get("weeks"), 12), 1), trends.MAX_WEEKS)
        now = self.deps.clock.now()
        since, until = trends.window(now=now, weeks=weeks)
        async with self.deps.db.session() as session:
            rows = await trends.incidents_between(session, since=since, until=until)
        # A guest's figures and charts cover only what they can see; a member's every incident.
        rows = await postmortem_flows.counted(self.deps, person=person.user_id, incidents=rows)
        # The table beside the charts counts the same incidents as they do (the weeks shown, from Monday 00:00 UTC).
        figures = pm_stats.of_incidents(rows, since=since, until=until)
        hidden = set()
        for incident in rows:
            if incident.private and not await self.deps.incident_access.can_see(
                person=person.user_id, incident=incident
            ):
                hidden.add(incident.id or 0)
        result = trends.compute(rows, now=now, weeks=weeks, hidden=hidden)
        return await render.page(
            "stats.html",
            person=person,
            nav="stats",
            trends=result,
            weeks=weeks,
            figures=figures,
            per_week=charts.per_week(result.weeks),
            times=charts.times(result.weeks),
            by_service=charts.by_service(result.by_service),
            guest=await self.deps.incident_access.is_guest(person=person.user_id),
        )

    async def oncall(self, request: web.Request, person: Person) -> web.StreamResponse:
        config = self.deps.settings.config
        now = self.deps.clock.now()
        horizon = now + ONCALL_AHEAD
        configured = config.oncall.rotation is not None or bool(config.oncall.overrides)
        shifts: list[oncall_rules.Shift] = []
        if configured:
            for shift in oncall_rules.shifts(config.oncall, now):
                shifts.append(shift)
                if shift.end is None or shift.end >= horizon or len(shifts) > 200:
                    break
        overrides = sorted((o for o in config.oncall.overrides if o.end > now), key=lambda o: o.start)
        levels = oncall_rules.per_level(config.escalation, config.oncall, now) if configured else []
        people: list[str | None] = [s.user for s in shifts] + [o.user for o in overrides]
        for level in levels:
            people += [*level.now, *level.next]
        return await render.page(
            "oncall.html",
            names=await self.names(people),
            person=person,
            nav="oncall",
            configured=configured,
            timezone=config.oncall.timezone,
            current=shifts[0] if shifts else None,
            following=shifts[1] if len(shifts) > 1 else None,
            shifts=shifts,
            overrides=overrides,
            levels=levels,
            now=now,
            horizon=horizon,
        )

    def routes(self) -> list[web.RouteDef]:
        guard = signed_in(self.dash)
        return [
            web.get("/", guard(self.incidents)),
            web.get("/incidents/{ref}", guard(self.incident_page)),
            web.get("/incidents/{ref}/postmortem", guard(self.postmortem_page)),
            web.get("/stats", guard(self.stats)),
            web.get("/oncall", guard(self.oncall)),
        ]


def id_of(value: str) -> int | None:
    """A row id from a URL (`/followups/12`), or None for anything else: the page answers 404."""
    return int(value) if _ID.fullmatch(value) else None


def _int(value: str | None, default: int) -> int:
    try:
        return int(value) if value else default
    except ValueError:
        return default


def _choice(value: str, choices: tuple[str, ...], problems: list[str], label: str, instead: str) -> str:
    """One of `choices` whatever its case (`p1`, `Resolved`); anything else is said, not silently dropped."""
    wanted = value.strip().casefold()
    if not wanted:
        return ""
    for choice in choices:
        if choice.casefold() == wanted:
            return choice
    problems.append(f"{label} {value[:40]!r} is not one of {', '.join(choices)}: {instead} is shown.")
    return ""


def _day(value: str, problems: list[str], label: str, *, next_day: bool = False) -> datetime | None:
    """`2026-11-20` as the start of that UTC day (of the next one for an inclusive "to")."""
    if not value.strip():
        return None
    try:
        day = date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"{label} date {value!r} is not a date: write YYYY-MM-DD.")
        return None
    if next_day and day == date.max:
        return None  # "to 9999-12-31" is no upper bound (and the next day does not exist)
    return datetime.combine(day + timedelta(days=1 if next_day else 0), time(0), tzinfo=UTC)
