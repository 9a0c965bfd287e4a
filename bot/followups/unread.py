"""Issues the closed-issue check could not read, sweep after sweep: a second `followup_checks` row.

A sweep that reads every issue it asks about but a few (a token that lost access to some of them, 401/403)
raises nothing: those follow-ups would silently stop following their issues. Each such sweep extends a
streak kept in the row `<sweep>:unread` (`due_at`: when the streak becomes a warning, an `UNREAD_FOR`
after its first sweep; `last_run_at`: its latest sweep; `runs`: sweeps in a row; `error`: how many and
the last error); a sweep that reads every watched issue ends it (one that asked about only some, see
`checker._note`). /health warns once the streak's own sweeps span `UNREAD_FOR`: never on one sweep, so
a blip that the next sweep reads through never shows.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.followups.models import FollowupCheck
from bot.followups.sweeps import insert_check

UNREAD_FOR = timedelta(hours=1)


def _row(sweep: str) -> str:
    return f"{sweep}:unread"


async def note_unread(session: AsyncSession, *, sweep: str, now: datetime, count: int, error: str) -> None:
    """This sweep left `count` issues unread: start the streak, or extend it."""
    text = f"{count} issue(s) could not be read; the last error: {error[:160]}"
    values = {"last_run_at": now, "runs": col(FollowupCheck.runs) + 1, "error": text}
    await session.exec(
        insert_check(session)
        .values(name=_row(sweep), due_at=now + UNREAD_FOR, last_run_at=now, runs=1, error=text)
        .on_conflict_do_update(index_elements=["name"], set_=values)
    )
    await session.commit()


async def all_read(session: AsyncSession, *, sweep: str, unread_before: datetime | None = None) -> None:
    """This sweep read every issue it asked about: the streak, if any, ends (with `unread_before`, only
    if its last unread sweep is older: this sweep did not ask about every issue)."""
    query = delete(FollowupCheck).where(col(FollowupCheck.name) == _row(sweep))
    if unread_before is not None:
        query = query.where(col(FollowupCheck.last_run_at) < unread_before)
    await session.exec(query)
    await session.commit()


async def unread_too_long(session: AsyncSession, *, sweep: str) -> tuple[datetime, str] | None:
    """Since when every sweep left issues unread, and what the last said, once that spans `UNREAD_FOR`."""
    row = (await session.exec(select(FollowupCheck).where(col(FollowupCheck.name) == _row(sweep)))).first()
    if row is None or row.last_run_at is None or row.last_run_at < row.due_at:
        return None
    return row.due_at - UNREAD_FOR, row.error or ""
