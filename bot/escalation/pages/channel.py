"""A page's channel half: invite the people paged, trigger PagerDuty, mention them in the incident
channel, and record each outcome as a recipient row.

It runs after the DMs, in the incident's turn (`Runtime.turn`), so each page is mentioned once and
after the pinned summary. A page that went out before the channel existed (Slack may make the
channel wait) is mentioned by `catch_up` when the channel setup ends.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import replace
from datetime import datetime
from functools import partial

from bot.escalation import pagerduty, policy
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages import outcome, queries
from bot.escalation.pages.outcome import Attempt
from bot.escalation.pages.targets import (
    NewTarget,
    add_targets,
    mark_invited,
    mark_target,
    targets,
    targets_by_page,
    told_escalated,
)
from bot.escalation.ports import PAGERDUTY, PageMessage, PageReport
from bot.escalation.retries import posted_after_all, posted_after_break, posted_before
from bot.escalation.runtime import Runtime
from bot.exceptions import ChatError, InviteIncomplete, is_transient
from bot.incidents.models import Incident

log = logging.getLogger(__name__)


class Channel:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def catch_up(self, incident_id: int) -> int:
        """The channel is set up: invite and mention there the people paged before it was.

        Returns how many pages were caught up. Safe to repeat: a page whose mention is recorded is
        skipped, unless someone it reached is still to be added to the channel. A mention Slack
        refused, or people Slack failed for now to add (only those added are recorded), is raised once
        every page was tried, so IncidentChannelReady's work is retried (`signal_work`) and the retry
        mentions or invites them; they were recorded and skipped for good before.
        """
        refused, uninvited = 0, 0
        async with self.rt.turn(incident_id):
            now = self.rt.clock.now()
            async with self.rt.db.session() as session:
                pages = await queries.pages(session, incident_id=incident_id)
                if not pages:
                    return 0  # most incidents of a storm: nobody paged before the channel was ready
                incident = await session.get(Incident, incident_id)
                if incident is None or not incident.channel_id:
                    return 0
                by_page = await targets_by_page(session, incident_id=incident_id)
                pending = _not_caught_up(pages, by_page, now)
            for page, rows in pending:
                mentioned, attempt = await self._catch_up_page(page, rows, incident, now)
                refused += not mentioned
                uninvited += len(attempt.uninvited)
        if pending:
            log.info(
                "%s: %s page(s) sent before the channel existed are now caught up there", incident.ref, len(pending)
            )
        if refused or uninvited:
            problems = [f"Slack refused the mention of {refused} page(s)"] if refused else []
            problems += [f"Slack did not add {uninvited} person(s) to the channel for now"] if uninvited else []
            raise ChatError(f"{incident.ref}: {'; '.join(problems)}", step="page catch-up")
        return len(pending)

    async def _catch_up_page(
        self, page: Page, rows: list[PageTarget], incident: Incident, now: datetime
    ) -> tuple[bool, Attempt]:
        """Invite and mention one page; returns whether its mention is recorded, and the attempt (who
        Slack failed to add for now is in `uninvited`)."""
        assert page.id is not None
        message = outcome.page_message(page, rows, now, late_after=self.rt.late_after_for(page))
        attempt = Attempt(
            number=page.attempts,
            final=not page.is_pending,
            retrying=[r.recipient for r in rows if r.kind == TargetKind.USER and r.state == TargetState.PENDING],
            retry_in=self.rt.retry_in(page.attempts),
        )
        await self.invite(rows, incident, attempt)
        after = await self.report(page.id, rows, incident, message, attempt, now=now)
        return not outcome.first_mention(after), attempt

    async def invite(self, rows: list[PageTarget], incident: Incident, attempt: Attempt) -> None:
        """Invite the people paged, and those whose DM is retried (the channel mention reaches them).

        Slack failing for now partway through leaves the rest in `attempt.uninvited`: the page is retried."""
        if not incident.channel_id:
            return
        invitees = [
            r
            for r in rows
            if r.kind == TargetKind.USER
            and not r.invited
            and (r.state == TargetState.SENT or r.recipient in attempt.retrying)
        ]
        if not invitees:
            return
        added = invitees
        try:
            await self.rt.pager.invite(channel_id=incident.channel_id, users=[r.recipient for r in invitees])
        except ChatError as exc:
            attempt.errors.append(f"invite to the channel failed: {exc}")
            # Only those Slack added are recorded; the others are invited again by the page's next attempt.
            done = set(exc.added) if isinstance(exc, InviteIncomplete) else set()
            added = [r for r in invitees if r.recipient in done]
            if is_transient(exc):
                attempt.uninvited = [r.recipient for r in invitees if r.recipient not in done]
        async with self.rt.db.session() as session:
            await mark_invited(session, target_ids=[r.id for r in added if r.id is not None])
        for row in added:
            row.invited = True

    async def trigger_pagerduty(
        self, page_id: int, rows: list[PageTarget], incident: Incident, attempt: Attempt, *, now: datetime
    ) -> list[PageTarget]:
        """PagerDuty takes the first page of an incident (best effort; its dedup key makes a repeat harmless).

        A 429 or 5xx stays pending, so the page's next attempt triggers again (PagerDuty asks for a
        retry); a refusal (bad key, invalid event) is final at once. Not sent once acknowledged.
        """
        row = outcome.row_of(rows, TargetKind.PAGERDUTY)
        if row is not None and row.state != TargetState.PENDING:
            return rows
        if incident.acknowledged_at is not None:
            # Someone took the incident in Slack while the DMs went out (or before a retry): PagerDuty,
            # told of the ack already, would open its alert anew and phone them about it.
            skipped = "PagerDuty not triggered: the incident was acknowledged meanwhile"
            return await self.record(page_id, rows, TargetKind.PAGERDUTY, PAGERDUTY, now=now, error=skipped, final=True)
        failure = await self.rt.call_pagerduty("trigger", incident)
        if failure is None:
            attempt.via.append("PagerDuty")
        error = None if failure is None else str(failure)
        final = failure is not None and not pagerduty.is_transient(failure)
        return await self.record(page_id, rows, TargetKind.PAGERDUTY, PAGERDUTY, now=now, error=error, final=final)

    async def report(
        self,
        page_id: int,
        rows: list[PageTarget],
        incident: Incident,
        message: PageMessage,
        attempt: Attempt,
        *,
        now: datetime,
    ) -> list[PageTarget]:
        """Mention the page in the incident channel (`outcome.page_report`); the first mention is recorded.

        A first mention an earlier attempt may have posted (`outcome.mention_unknown`) is looked for first
        (`retries.posted_before`), and one whose answer is lost now is looked for when the page will not go out
        again (`retries.posted_after_all`), as a page DM is: found, it is recorded as posted, not posted again.
        One that failed for now (`is_transient`) before the last attempt has the page go out again.
        """
        assert incident.channel_id is not None
        look = partial(self._look, incident, message, rows)
        retry = attempt.number > 1
        if outcome.mention_unknown(rows, retry=retry) and await posted_before(look(), self._what(message)):
            rows = await self.record(page_id, rows, TargetKind.CHANNEL, incident.channel_id, now=now, error=None)
        full = outcome.first_mention(rows)
        report = await self._noted(incident, outcome.page_report(rows, message, attempt))
        if report is not None:
            last = message.level >= policy.level_count(self.rt.config.escalation, incident.severity)
            report = replace(report, last_level=last)
        error = None
        if report is not None:
            if full:
                await self._unknown_until_recorded(rows)
            try:
                await self.rt.pager.report_page(incident=incident, report=report)
            except ChatError as exc:
                code = exc.code or str(exc)
                # A first mention Slack failed for now goes out with the page's next attempt (which looks for it
                # first if the answer was lost): the DMs all getting through must not leave the channel untold.
                again = full and is_transient(exc) and not attempt.final
                last = full and not again and not outcome.tried_again(rows, attempt, in_channel=True)
                if not (last and await posted_after_all(code, look, self._what(message))):
                    error = f"{outcome.MENTION_FAILED}{code}"
                    attempt.errors.append(error)
                    attempt.mention_again = again
        if full:
            return await self.record(page_id, rows, TargetKind.CHANNEL, incident.channel_id, now=now, error=error)
        return rows

    async def _unknown_until_recorded(self, rows: list[PageTarget]) -> None:
        """A first mention tried again: its row forgets the last try's answer, so that one dying (or breaking)
        between Slack taking this mention and its record leaves the outcome unknown, and it is looked for."""
        row = outcome.row_of(rows, TargetKind.CHANNEL)
        if row is None or row.id is None or row.error is None:
            return
        async with self.rt.db.session() as session:
            await mark_target(session, target_id=row.id, state=TargetState.PENDING, now=self.rt.clock.now())
        row.error = None

    async def _noted(self, incident: Incident, report: PageReport | None) -> PageReport | None:
        """A later level's mention says who had only a note that it escalated (paged at an earlier level)."""
        message = report.page if report is not None else None
        if report is None or message is None or not report.paged or message.level == 1 or message.repeat:
            return report
        async with self.rt.send_db.session() as session:
            noted = await told_escalated(
                session, incident_id=incident.id or 0, level=message.level, repeat=message.repeat, users=report.paged
            )
        return replace(report, noted=noted)

    async def found_after_all(self, page: Page, rows: list[PageTarget], incident: Incident) -> None:
        """Before a page whose last attempt broke on an error of our own is given up: a first mention it may have
        posted before breaking (or an earlier attempt's, whose answer was lost) is looked for, and found, recorded
        as posted (`retries.posted_after_break`). Only a Slack read with no session held; anything it raises is
        logged and the page given up as before."""
        assert page.id is not None
        if not incident.channel_id or not outcome.mention_unknown(rows, retry=True):
            return
        message = outcome.page_message(page, rows, self.rt.clock.now(), late_after=self.rt.late_after_for(page))
        look = partial(self._look, incident, message, rows)
        if not await posted_after_break(look, self._what(message)):
            return
        try:
            now = self.rt.clock.now()
            await self.record(page.id, rows, TargetKind.CHANNEL, incident.channel_id, now=now, error=None)
        except Exception:
            log.exception("could not record page %s's mention found before giving it up", page.id)

    def _look(self, incident: Incident, message: PageMessage, rows: list[PageTarget]) -> Awaitable[bool]:
        since = outcome.first_attempt(rows, self.rt.clock.now())
        return self.rt.pager.page_report_posted(incident=incident, page=message, since=since)

    @staticmethod
    def _what(message: PageMessage) -> str:
        return f"page {message.page_id}'s mention in the incident channel"

    async def record(
        self,
        page_id: int,
        rows: list[PageTarget],
        kind: TargetKind,
        recipient: str,
        *,
        now: datetime,
        error: str | None,
        final: bool = False,
    ) -> list[PageTarget]:
        """Store the channel mention's or PagerDuty's outcome (SENT, or PENDING with the error, FAILED if
        `final`); returns the rows."""
        row = outcome.row_of(rows, kind)
        state = TargetState.SENT if error is None else TargetState.FAILED if final else TargetState.PENDING
        async with self.rt.db.session() as session:
            if row is None or row.id is None:
                new = [NewTarget(kind, recipient, state=state, error=error)]
                # If another sender of the page wrote it first, theirs stands and comes back.
                return await add_targets(session, page_id=page_id, new=new, now=now, existing=rows)
            await mark_target(session, target_id=row.id, state=state, now=now, error=error)
            stored = await session.get(PageTarget, row.id, populate_existing=True)
            if stored is None:
                return await targets(session, page_id=page_id)
        return [stored if r is row else r for r in rows]


def _not_caught_up(
    pages: list[Page], by_page: dict[int, list[PageTarget]], now: datetime
) -> list[tuple[Page, list[PageTarget]]]:
    """Pages that reached people but were never mentioned in the channel (or Slack refused the mention),
    or that reached someone not added to the channel yet, and are not going out right now."""
    found = []
    for page in pages:
        assert page.id is not None
        rows = by_page.get(page.id, [])
        people = [r for r in rows if r.kind in outcome.PEOPLE]
        mention = outcome.row_of(rows, TargetKind.CHANNEL)
        unsaid = mention is None or mention.state == TargetState.PENDING
        outside = mention is not None and any(
            r.kind == TargetKind.USER and r.state == TargetState.SENT and not r.invited for r in rows
        )
        # A page whose DMs are going out right now reports itself when they are out.
        if people and (unsaid or outside) and not outcome.dm_in_flight(rows, now):
            found.append((page, rows))
    return found
