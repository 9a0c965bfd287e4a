"""The dashboard's writes (POST, CSRF-checked by `signed_in`): the post-mortem's written sections,
follow-ups marked done, and a follow-up's issue created in the team's tracker. Each calls one domain
function, which puts the change on the timeline with the signed-in person as its actor; then the
browser is sent back (303)."""

from __future__ import annotations

from aiohttp import web

from bot.exceptions import BotError, NotFound, UsageError
from bot.followups import flows as issues
from bot.followups import service as issue_items
from bot.followups.ports import TrackerError, TrackerRateLimited
from bot.incidents import followups
from bot.postmortem import sections
from bot.postmortem.data import SECTIONS
from bot.web import render
from bot.web.auth import form_of, signed_in
from bot.web.pages import NotVisible, Pages, id_of
from bot.web.session import Person

VIA = "dashboard"


class Writes:
    def __init__(self, pages: Pages) -> None:
        self.pages = pages
        self.deps = pages.deps

    async def save_sections(self, request: web.Request, person: Person) -> web.StreamResponse:
        ref = request.match_info["ref"]
        try:
            incident = await self.pages.incident(ref, person)
        except NotVisible:
            return await self.pages.not_found(person, ref)
        form = await form_of(request)
        drafts: dict[str, str] = {}
        conflicts: dict[str, sections.EditConflict] = {}
        problems: list[str] = []
        for key in SECTIONS:
            if key not in form:
                continue
            text, expected = str(form.get(key) or ""), str(form.get(f"expected_{key}") or "")
            async with self.deps.db.session() as session:
                try:
                    await sections.save(
                        session,
                        incident=incident,
                        section=key,
                        text=text,
                        expected=expected,
                        actor=person.user_id,
                        now=self.deps.clock.now(),
                        via=VIA,
                    )
                except sections.EditConflict as exc:
                    conflicts[key], drafts[key] = exc, text
                except UsageError as exc:
                    problems.append(str(exc))
                    drafts[key] = text
        if conflicts or problems:
            return await self.pages.show_postmortem(
                request, person, incident, drafts=drafts, conflicts=conflicts, problems=problems
            )
        return render.redirect(f"/incidents/{incident.ref}/postmortem?saved=1#edit")

    async def followup(self, request: web.Request, person: Person) -> web.StreamResponse:
        ref = request.match_info["ref"]
        try:
            incident = await self.pages.incident(ref, person)
        except NotVisible:
            return await self.pages.not_found(person, ref)
        form = await form_of(request)
        item_id = id_of(request.match_info["item"])
        if item_id is None:
            return await self.pages.not_found(person, ref)
        async with self.deps.db.session() as session:
            try:
                await followups.set_done(
                    session,
                    incident=incident,
                    item_id=item_id,
                    done=str(form.get("done") or "") == "1",
                    actor=person.user_id,
                    now=self.deps.clock.now(),
                    via=VIA,
                )
            except NotFound:
                return await self.pages.not_found(person, ref)
        return render.redirect(f"/incidents/{incident.ref}#followup-{item_id}")

    async def create_issue(self, request: web.Request, person: Person) -> web.StreamResponse:
        """*Create issue*: the tracker's refusals (rate limit, down, misconfigured), and a duplicate issue
        to close, are told on the page."""
        ref = request.match_info["ref"]
        item_id = id_of(request.match_info["item"])
        if item_id is None:
            return await self.pages.not_found(person, ref)
        try:
            incident = await self.pages.incident(ref, person)
            async with self.deps.db.session() as session:
                item = await issue_items.get(session, item_id=item_id)
            if item.incident_id != incident.id:
                raise NotFound(f"There is no follow-up #{item_id}.")
            filing = await issues.file_issue(self.deps, item_id=item_id, actor=person.user_id, via=VIA)
        except (NotVisible, NotFound):
            return await self.pages.not_found(person, ref)
        except BotError as exc:
            status, headers = 409, {}
            if isinstance(exc, TrackerRateLimited):
                status, headers = 429, {"Retry-After": str(max(1, round(exc.retry_after)))}
            elif isinstance(exc, TrackerError):
                status = 502
            problem = f"Could not create the issue: {exc}"
            response = await self.pages.show_incident(
                request, person, incident, status=status, issue_problems={item_id: problem}
            )
            response.headers.update(headers)
            return response
        if filing.duplicate is not None:  # a create that outlived its claim: the second issue is for a person to close
            dup = filing.duplicate
            told = (
                f"This follow-up got an issue while the tracker was answering; the one this click made, "
                f"{dup.name} ({dup.url}), is a duplicate: please close it."
            )
            return await self.pages.show_incident(request, person, incident, issue_problems={item_id: told})
        return render.redirect(f"/incidents/{incident.ref}#followup-{item_id}")

    def routes(self) -> list[web.RouteDef]:
        guard = signed_in(self.pages.dash)
        return [
            web.post("/incidents/{ref}/postmortem", guard(self.save_sections)),
            web.post("/incidents/{ref}/followups/{item}", guard(self.followup)),
            web.post("/incidents/{ref}/followups/{item}/issue", guard(self.create_issue)),
        ]
