"""Bounded retries, shared by pages and reminders: a claimed row that could not go out is released
for another attempt after a back-off (30 s, then 60 s), and after `max_attempts` its failure is
recorded (timeline) instead of retrying for ever.

A retry after an attempt whose outcome is unknown (`exceptions.unanswered`: the answer lost, a crash)
first looks for that attempt's post (`posted_before`): Slack may have posted it. The last attempt allowed,
when its own outcome is unknown, looks once more before it is given up (`posted_on_last`), and so does one
that broke on an error of our own, which left no outcome at all (`posted_after_break`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

from bot.escalation import leases
from bot.escalation.models import Page, Reminder
from bot.escalation.runtime import Runtime
from bot.exceptions import ChatError, unanswered

log = logging.getLogger(__name__)
T = TypeVar("T", Page, Reminder)


async def posted_before(look: Awaitable[bool], what: str) -> bool:
    """Whether the last attempt, which heard no answer of Slack's (a cut, a timeout, a crash), posted `what`.
    When Slack cannot be read it goes out again: twice beats not at all. Pages, reminders and the status
    page's reminders to publish share it."""
    try:
        found = await look
    except ChatError as exc:
        log.warning("could not look for an earlier %s: %s", what, exc.code or exc)
        return False
    if found:
        log.info("%s had been posted already: recorded, not sent again", what)
    return found


async def posted_after_all(code: str | None, look: Callable[[], Awaitable[bool]], what: str) -> bool:
    """Whether the last attempt allowed, which heard no answer of Slack's (`code` as `unanswered` reads it),
    posted `what` after all: else it is given up, and the timeline would say it failed though it arrived.
    After an answer of Slack's own nothing was posted, so nothing is looked for. Page DMs and mentions,
    reminders and the status page's reminders to publish share it, as they share `posted_before`."""
    if not unanswered(code):
        return False
    return await posted_before(look(), what)


async def posted_on_last(
    *, attempts: int, max_attempts: int, code: str | None, look: Callable[[], Awaitable[bool]], what: str
) -> bool:
    """On the last attempt allowed only (`attempts`: the row's so far, this one included): whether Slack
    posted `what` though its answer was lost (`posted_after_all`); found, the caller records it as sent, as a
    retry that finds it does. The one rule of pages, reminders and the status page's reminders to publish,
    each with its own `max_attempts`."""
    return attempts >= max_attempts and await posted_after_all(code, look, what)


async def posted_after_break(look: Callable[[], Awaitable[bool]], what: str) -> bool:
    """Whether the last attempt allowed, which broke on an error of our own (a bug, a write failing after
    Slack took the post) and so recorded no outcome, posted `what` before breaking: a retry would have looked
    first, the last attempt has none. Only a Slack read; anything it raises is logged and counts as not found,
    so the caller gives up as it would have."""
    try:
        return await posted_after_all(None, look, what)
    except Exception:
        log.exception("could not look for %s before giving it up", what)
        return False


class Sender(Generic[T]):
    """Claim → deliver → finish for one kind of row; subclasses say how a failure is recorded."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt

    async def record_failure(self, row: T, token: str, *, error: str) -> None:
        raise NotImplementedError

    async def deliver(self, row: T, token: str, deliver: Callable[[T, str], Awaitable[bool]]) -> bool:
        """Deliver a claimed row; an unexpected error releases it for a retry (bounded)."""
        try:
            return await deliver(row, token)
        except Exception as exc:
            log.exception("%s %s (incident %s) failed", type(row).__name__, row.id, row.incident_id)
            await self.retry_later(row, token, error=f"{type(exc).__name__}: {exc}")
            return False

    async def retry_later(self, row: T, token: str, *, error: str) -> bool:
        """Release the claimed row for another attempt after the back-off; give up after `max_attempts`.

        False only when the row was not ours to release any more (cancelled or taken over meanwhile).
        """
        if row.attempts >= self.rt.max_attempts:
            await self.give_up(row, token, error=error)
            return True
        retry_at = self.rt.clock.now() + self.rt.retry_in(row.attempts)
        model = type(row)
        assert row.id is not None
        try:
            async with self.rt.db.session() as session:
                released = await leases.release(
                    session, model=model, row_id=row.id, token=token, retry_at=retry_at, error=error
                )
        except Exception:
            log.exception("could not release %s %s; its lease will expire instead", model.__name__, row.id)
            return True
        if released:
            self.rt.wake_for([retry_at])
        return released

    async def give_up(self, row: T, token: str, *, error: str) -> None:
        """After `max_attempts` failures: record the failure (timeline) instead of retrying for ever."""
        assert row.id is not None
        error = f"gave up after {self.rt.max_attempts} attempts: {error}"
        try:
            await self.record_failure(row, token, error=error)
        except Exception:
            log.exception("could not record the failure of %s %s", type(row).__name__, row.id)
