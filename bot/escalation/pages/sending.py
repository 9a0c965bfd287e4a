"""Sending one page: claim → DM → channel half → record, whoever triggers it (a declaration, a
timer, a sweep, a restart).

A page not tried yet resolves its recipients before the claim, so the claim records them in the
same write; pages' claims and DM outcomes are written together with other pages' going out at the
same moment (`writes.PageWrites`).

A page DM that fails for a transient reason (Slack 5xx, unreachable, throttled) is not final: the
page is released for a retry after a back-off (30 s, then 60 s) that DMs only the people not yet
reached, and is recorded as sent after the attempt that reaches them, or after `max_attempts`
with the rest under `failed`. Where the last attempt heard no answer of Slack's, the retry first
looks for the page in the DM (`pages.dms`). A permanent error (`user_not_found`, ...) is final at
once and reported in the channel.

A page has two halves. Its DMs go out as soon as it is due, whatever else is going on (one
incident's pages in order). Its channel half (invite, mention) and its record wait for their
turn: per incident (a lock, in one process) and behind other pages' DMs (`PagesFirst`). While the
channel is missing or still being set up, a page DMs and leaves its channel half to
`Channel.catch_up`, which the end of the setup triggers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime
from functools import partial

from bot.clock import utc
from bot.escalation import leases, policy
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages import outcome, recipients
from bot.escalation.pages.channel import Channel
from bot.escalation.pages.dms import PageDms
from bot.escalation.pages.outcome import Attempt
from bot.escalation.pages.queries import page_with_incident
from bot.escalation.pages.records import cancel_stopped, finish_page
from bot.escalation.pages.targets import NewTarget, add_targets, mark_target, targets, told_escalated
from bot.escalation.pages.writes import PageClaim
from bot.escalation.ports import PageMessage
from bot.escalation.retries import Sender
from bot.escalation.runtime import Runtime
from bot.incidents.models import Incident

log = logging.getLogger(__name__)


class PageSender(Sender[Page]):
    def __init__(self, rt: Runtime, channel: Channel) -> None:
        super().__init__(rt)
        self.channel = channel
        self.dms = PageDms(rt)

    async def send_page(self, page_id: int, *, dms_out: Callable[[], None] | None = None) -> bool:
        """Claim, deliver and mark one page; False when another process has it or it should not go out.

        True when this call recorded the page as sent; a page released for a retry (someone's DM
        failed for a transient reason) is False until the attempt that finishes it. `dms_out` is
        called once the page's DMs are out (or it will send none), before the channel half.
        """
        async with self.rt.priority.page(then=dms_out) as dms_sent:
            token = leases.new_token()
            first = await self._first_recipients(page_id)
            claimed = await self.rt.writes.claim(PageClaim(page_id, token, first))
            if claimed is None:
                return False
            deliver = partial(
                self._deliver_page, recorded=claimed.recipients, claimed=claimed.incident, dms_sent=dms_sent
            )
            return await self.deliver(claimed.page, token, deliver)

    async def _first_recipients(self, page_id: int) -> list[NewTarget] | None:
        """A page not tried yet: whom it goes to, resolved before its claim so the claim records them.

        Resolving reads Slack at most (a user group, a handle) and writes nothing, so it runs
        outside any transaction. None when the page is tried already, stopped or gone: its
        sender reads or resolves after the claim, as before.
        """
        now = self.rt.clock.now()
        async with self.rt.send_db.session() as session:
            found = await page_with_incident(session, page_id=page_id)
        if found is None:
            return None
        page, incident = found
        if page.attempts or not page.is_pending or utc(page.due_at) > now or self.stop_reason(page, incident):
            return None
        users, resolved = await recipients.resolve(self.rt.pager, self.rt.config, list(page.notify), now)
        return users + recipients.unresolved(resolved)

    async def _deliver_page(
        self,
        page: Page,
        token: str,
        *,
        recorded: list[PageTarget] | None,
        claimed: Incident | None = None,
        dms_sent: Callable[[], None],
    ) -> bool:
        """One attempt: resolve the targets (first attempt), DM whoever is still pending, then report and decide.

        `recorded`: the recipients the claim recorded (a first attempt resolved before it), else None.
        `claimed`: the incident as the claim's transaction read it; with `recorded`, nothing is read here.

        The DMs go out at once; the channel half (invite, mention) and the record wait for the
        incident's turn, so a page never waits for another page's bookkeeping. Everyone reached
        is recorded per recipient at once, so a retry DMs only the others.
        """
        assert page.id is not None
        now = self.rt.clock.now()
        looked = await self._look(page, token, recorded=recorded, claimed=claimed, now=now)
        if looked is None:
            return False
        incident, rows, reason = looked
        message = outcome.page_message(page, rows, now, late_after=self.rt.late_after_for(page))
        attempt = Attempt(
            number=page.attempts, final=page.attempts >= self.rt.max_attempts, retry_in=self.rt.retry_in(page.attempts)
        )
        mentioned = outcome.row_of(rows, TargetKind.CHANNEL) is not None
        if reason is None:  # else it reached someone before the incident stopped: DM nobody else
            if recorded is None:
                rows = await self._resolve_page_targets(page, rows, token, now)
            rechecked = await self._recheck(page, token, rows)
            if rechecked is None:
                return False
            incident, reason = rechecked
        if reason is None:
            await self.dms.send(rows, incident, message, token, attempt)
        dms_sent()
        # The invite, the mention and the record can wait: they take turns with channel setups.
        async with self.rt.priority.later(), self.rt.turn(page.incident_id):
            return await self._finish_in_turn(
                page, token, message, attempt, now=now, mentioned=mentioned, stopped=reason
            )

    async def _look(
        self, page: Page, token: str, *, recorded: list[PageTarget] | None, claimed: Incident | None, now: datetime
    ) -> tuple[Incident, list[PageTarget], str | None] | None:
        """The incident, the page's recipients and why it should stop, as of after the claim; None when
        the page was cancelled here (it should stop and has reached nobody)."""
        assert page.id is not None
        if recorded is not None and claimed is not None:  # a first claim read them: no transaction here
            reason = self.stop_reason(page, claimed)
            if reason is None or outcome.reached(recorded):
                return claimed, recorded, reason
        async with self.rt.send_db.session() as session:
            incident = await session.get(Incident, page.incident_id)
            reason = self.stop_reason(page, incident)
            if recorded is not None:
                rows = recorded
            else:  # only a holder of the page's claim adds recipients: on the first claim there are none yet
                rows = [] if page.attempts == 1 else await targets(session, page_id=page.id)
            if reason is not None and not outcome.reached(rows):
                await cancel_stopped(session, page=page, token=token, now=now, reason=reason)
                return None
        assert incident is not None
        return incident, rows, reason

    async def _recheck(self, page: Page, token: str, rows: list[PageTarget]) -> tuple[Incident, str | None] | None:
        """The stop condition read again under the claim, just before the first DM; None when the page was
        cancelled here (stopped, and it has reached nobody).

        The claim's read (or `_look`'s) came first: an ack or resolve committed since then, while the
        claim was answered or the targets resolved, would otherwise let this level's DMs out. A window
        remains, and always will: an ack committed between this read and Slack taking each DM. Such a
        DM goes out and is recorded as sent (sent is the truth); the record notes the stop.
        """
        now = self.rt.clock.now()
        async with self.rt.send_db.session() as session:
            incident = await session.get(Incident, page.incident_id)
            reason = self.stop_reason(page, incident)
            if reason is not None and not outcome.reached(rows):
                await cancel_stopped(session, page=page, token=token, now=now, reason=reason)
                return None
        assert incident is not None
        return incident, reason

    async def _finish_in_turn(
        self,
        page: Page,
        token: str,
        message: PageMessage,
        attempt: Attempt,
        *,
        now: datetime,
        mentioned: bool,
        stopped: str | None,
    ) -> bool:
        """The channel half and the decision, read afresh: the channel may be ready now, or
        `Channel.catch_up` may have invited and mentioned everyone this attempt reached."""
        assert page.id is not None
        async with self.rt.db.session() as session:
            incident = await session.get(Incident, page.incident_id)
            rows = await targets(session, page_id=page.id)
        assert incident is not None
        if stopped is not None:
            return await self.finish(page, token, incident, now=now, errors=[], stopped=stopped)
        rows, in_channel = await self._channel_half(page, rows, incident, message, attempt, now, mentioned=mentioned)
        if outcome.tried_again(rows, attempt, in_channel=in_channel):  # out of the channel: its catch-up mentions it
            if await self.retry_later(page, token, error=outcome.why(rows, attempt)):
                return False
            if not outcome.reached(rows):
                return False  # cancelled meanwhile, and it had reached nobody: it stays cancelled
            # Cancelled while it went out, after reaching someone: sent is the truth.
        return await self.finish(page, token, incident, now=now, errors=attempt.errors)

    async def _channel_half(
        self,
        page: Page,
        rows: list[PageTarget],
        incident: Incident,
        message: PageMessage,
        attempt: Attempt,
        now: datetime,
        *,
        mentioned: bool,
    ) -> tuple[list[PageTarget], bool]:
        """Invite, PagerDuty (level 1), mention; returns the rows and whether the channel half ran here."""
        assert page.id is not None
        caught_up = not mentioned and outcome.row_of(rows, TargetKind.CHANNEL) is not None
        in_channel = not caught_up and outcome.channel_settled(incident, self.rt.clock.now())  # else `catch_up`'s
        if in_channel:
            await self.channel.invite(rows, incident, attempt)
        if page.level == 1 and page.repeat == 0 and self.rt.pagerduty is not None:
            rows = await self.channel.trigger_pagerduty(page.id, rows, incident, attempt, now=now)
        if in_channel:
            rows = await self.channel.report(page.id, rows, incident, message, attempt, now=now)
        return rows, in_channel

    async def _resolve_page_targets(
        self, page: Page, rows: list[PageTarget], token: str, now: datetime
    ) -> list[PageTarget]:
        """First attempt: bot.yml targets → users, recorded. Later: only targets that failed for now."""
        assert page.id is not None
        people = [r for r in rows if r.kind in outcome.PEOPLE]
        if not people:
            todo = list(page.notify)
        else:
            todo = [r.recipient for r in people if r.kind == TargetKind.TARGET and r.state == TargetState.PENDING]
        if not todo:
            return rows
        new, resolved = await recipients.resolve(self.rt.pager, self.rt.config, todo, now)
        if not people:
            new += recipients.unresolved(resolved)
        async with self.rt.db.session() as session:
            rows = await add_targets(
                session, page_id=page.id, new=new, now=now, existing=rows, token=token, lease=self.rt.lease
            )
            if people:
                for row in rows:
                    if row.kind == TargetKind.TARGET and row.recipient in resolved and row.id is not None:
                        state, reason = resolved[row.recipient]
                        if await mark_target(session, target_id=row.id, state=state, now=now, error=reason):
                            row.state, row.error = state, reason
        return rows

    async def finish(
        self,
        page: Page,
        token: str,
        incident: Incident,
        *,
        now: datetime,
        errors: list[str],
        stopped: str | None = None,
    ) -> bool:
        """Record the page as sent, with who was reached and who was not (and why).

        Lateness is measured at the first attempt (the oldest recipient row), not at this one. The next repeat
        is planned only while the incident still escalates, as read now: a resolve or an ack that stops it may
        have landed (and its handler cancelled what was pending) while this page went out.
        """
        assert page.id is not None
        async with self.rt.db.session() as session:
            current = await session.get(Incident, page.incident_id, populate_existing=True)
            rows = await targets(session, page_id=page.id)
            delivery = outcome.delivery_of(rows, attempts=page.attempts, stopped=stopped)
            delivery.errors = list(dict.fromkeys([*errors, *delivery.errors]))
            delivery.noted = await told_escalated(
                session, incident_id=page.incident_id, level=page.level, repeat=page.repeat, users=delivery.sent_to
            )
            finished = await finish_page(
                session,
                page_id=page.id,
                token=token,
                now=now,
                delivery=delivery,
                escalation=self.rt.config.escalation,
                severity=current.severity if current is not None else incident.severity,
                late_after=self.rt.late_after_for(page),
                started_at=outcome.first_attempt(rows, now),
                repeat=stopped is None and self.stop_reason(page, current) is None,
            )
        if finished is None:
            log.error("page %s for %s was sent but our claim had been taken over", page.id, incident.ref)
            return False
        if self.rt.on_page is not None:
            self.rt.on_page(finished, delivery)
        following = policy.next_repeat(
            self.rt.config.escalation,
            severity=incident.severity,
            level=page.level,
            repeat=page.repeat,
            due_at=utc(page.due_at),
            sent_at=now,
        )
        if following is not None:
            self.rt.wake_for([max(following.due_at, now)])  # finish_page planned it
        return True

    async def record_failure(self, row: Page, token: str, *, error: str) -> None:
        """The last attempt broke (an error of our own): a DM or the mention it may have sent is looked for before
        giving up."""
        assert row.id is not None
        async with self.rt.db.session() as session:
            incident = await session.get(Incident, row.incident_id)
            rows = await targets(session, page_id=row.id)
        assert incident is not None
        await self.dms.found_after_all(row, token, rows)
        await self.channel.found_after_all(row, rows, incident)
        await self.finish(row, token, incident, now=self.rt.clock.now(), errors=[error])

    def stop_reason(self, page: Page, incident: Incident | None) -> str | None:
        """Checked again at send time, in case the signal that should have cancelled the page was lost."""
        if incident is None:
            return "incident no longer exists"
        if not incident.is_open:
            return "incident resolved"
        escalation = self.rt.config.escalation
        if policy.stop_on(escalation, incident.severity) == "ack" and incident.acknowledged_at is not None:
            return "incident acknowledged"
        levels = policy.level_count(escalation, incident.severity)
        if page.level > levels:
            return f"{incident.severity} pages {levels} level(s)"
        if page.repeat and page.level != levels:
            return f"level {page.level} is no longer the last level for {incident.severity}"
        return None
