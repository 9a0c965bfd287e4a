"""A page's DMs: each pending person DMed behind their own claim, each outcome recorded at once.

Where the last attempt at a person heard no answer of Slack's (`unanswered`), the DM is first looked
for (`retries.posted_before`): Slack may have posted it. The last attempt allowed does the same after
a DM that heard no answer, before giving that person up (`retries.posted_on_last`), and so does a
last attempt that broke on an error of our own before it recorded what it sent (`found_after_all`, with
`retries.posted_after_break`, as reminders do).
"""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import partial

from bot.clock import utc
from bot.escalation import leases
from bot.escalation.models import Page, PageTarget, TargetKind, TargetState
from bot.escalation.pages import outcome
from bot.escalation.pages.outcome import Attempt
from bot.escalation.pages.targets import mark_target, paged_before
from bot.escalation.pages.writes import DmOutcome
from bot.escalation.ports import PageMessage
from bot.escalation.retries import posted_after_break, posted_before, posted_on_last
from bot.escalation.runtime import Runtime
from bot.exceptions import ChatError, is_transient, unanswered
from bot.incidents.models import Incident

log = logging.getLogger(__name__)


class PageDms:
    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def send(
        self, rows: list[PageTarget], incident: Incident, message: PageMessage, token: str, attempt: Attempt
    ) -> None:
        """DM every pending person, each behind its own claim, and record each outcome at once."""
        earlier = await self._paged_before(rows, incident, message)
        for row in rows:
            if row.kind != TargetKind.USER or row.state != TargetState.PENDING or row.id is None:
                continue
            now = self.rt.clock.now()
            last = row.error  # the last claim's outcome, as the claim below fences it (`leases.claim_target`)
            held = row.claim_token == token and row.claim_expires_at is not None and utc(row.claim_expires_at) > now
            if not held:  # rows this attempt inserted are ours already
                async with self.rt.send_db.session() as session:
                    if not await leases.claim_target(
                        session, target_id=row.id, token=token, now=now, attempts=row.attempts, lease=self.rt.lease
                    ):
                        continue  # another sender has this person right now
                row.attempts += 1
            if row.attempts > 1 and unanswered(last) and await self._posted_before(row, message):
                state, error = TargetState.SENT, None
            else:
                note = replace(message, paged_at_level=earlier.get(row.recipient))
                state, error = await self._dm(row.recipient, incident, note)
                if state == TargetState.PENDING and await self._posted_on_last(attempt, row, message, error):
                    state, error = TargetState.SENT, None
            await self.rt.writes.record(DmOutcome(row.id, token, state, error))
            row.state, row.error, row.claim_expires_at = state, error, None
            if state == TargetState.SENT:
                attempt.sent.append(row.recipient)
            elif state == TargetState.FAILED:
                attempt.failed[row.recipient] = error or "failed"
            else:
                attempt.retrying.append(row.recipient)

    async def found_after_all(self, page: Page, token: str, rows: list[PageTarget]) -> None:
        """Before a page whose last attempt broke on an error of our own is given up: whoever it leaves pending
        with an unknown outcome (a DM Slack may have taken before the break, or an earlier attempt's the break
        kept this one from looking for) is looked for, and found, recorded as sent rather than given up.

        Only a Slack read, with no session held; anything it raises is logged and the page given up as before.
        """
        unknown = [
            r
            for r in rows
            if r.kind == TargetKind.USER
            and r.state == TargetState.PENDING
            and r.id is not None
            and unanswered(r.error)
            and not (r.claim_token == token and r.error is not None)  # this attempt's answer: looked for already
        ]
        if not unknown:
            return
        message = outcome.page_message(page, rows, self.rt.clock.now(), late_after=self.rt.late_after_for(page))
        for row in unknown:
            assert row.id is not None
            look = partial(self.rt.pager.page_dm_posted, user=row.recipient, page=message, since=utc(row.created_at))
            if not await posted_after_break(look, f"page {message.page_id} DM to {row.recipient}"):
                continue
            try:
                async with self.rt.db.session() as session:
                    await mark_target(session, target_id=row.id, state=TargetState.SENT, now=self.rt.clock.now())
            except Exception:
                log.exception("could not record page %s's DM to %s found before giving it up", page.id, row.recipient)

    async def _paged_before(self, rows: list[PageTarget], incident: Incident, message: PageMessage) -> dict[str, int]:
        """People of a later level paged at an earlier one (the on-call engineer is the team lead too) get a note,
        not a second page. A repeat of the last level is a reminder to the same people on purpose: not here."""
        if message.level == 1 or message.repeat or incident.id is None:
            return {}
        if not any(r.kind == TargetKind.USER and r.state == TargetState.PENDING for r in rows):
            return {}
        async with self.rt.send_db.session() as session:
            return await paged_before(session, incident_id=incident.id, level=message.level)

    async def _posted_before(self, row: PageTarget, message: PageMessage) -> bool:
        look = self.rt.pager.page_dm_posted(user=row.recipient, page=message, since=utc(row.created_at))
        return await posted_before(look, f"page {message.page_id} DM to {row.recipient}")

    async def _posted_on_last(self, attempt: Attempt, row: PageTarget, message: PageMessage, error: str | None) -> bool:
        """The page's last attempt lost the DM's answer: found in the DM, it is sent, not given up."""
        look = partial(self.rt.pager.page_dm_posted, user=row.recipient, page=message, since=utc(row.created_at))
        what = f"page {message.page_id} DM to {row.recipient}"
        attempts, max_attempts = attempt.number, self.rt.max_attempts
        return await posted_on_last(attempts=attempts, max_attempts=max_attempts, code=error, look=look, what=what)

    async def _dm(self, user: str, incident: Incident, message: PageMessage) -> tuple[TargetState, str | None]:
        """One page DM: SENT, FAILED for good (`user_not_found`, ...) or PENDING (try again later)."""
        try:
            await self.rt.pager.dm_page(user=user, incident=incident, page=message)
        except ChatError as exc:
            reason = exc.code or str(exc)
            log.warning("page DM to %s for %s failed: %s", user, incident.ref, reason)
            return (TargetState.PENDING if is_transient(exc) else TargetState.FAILED), reason
        except Exception:
            # One broken DM must not stop the others; it is retried like a Slack outage (bounded).
            log.exception("page DM to %s for %s failed", user, incident.ref)
            return TargetState.PENDING, "unexpected error"
        return TargetState.SENT, None
