"""Follow-ups' issues in the database: claim before creating, record the link, mark done when closed.

Creating is claimed with a conditional UPDATE (`issue_claimed_at`, a lease its holder renews while it
asks the tracker) so two clicks, or a click and `/incident postmortem done`, or two replicas, open one
issue. Before the tracker is asked, `issue_token` is stored and sent with the issue: a process that dies
between the tracker's answer and the record leaves the claim to expire, and the retry, seeing the token,
looks the issue up in the tracker before creating one (see trackers.py for how each vendor is searched).

Checking for closed issues is rate-limited per follow-up: one whose issue was asked about within
`RECHECK_AFTER` is not asked again, and the ask itself is claimed (a conditional UPDATE of
`issue_checked_at`), so views, the schedule and replicas ask once between them.

Asked about: open follow-ups with an issue, and those the bot marked done because their issue closed
(`issue_closed_at`) within `REOPEN_WINDOW`, opened again if their issue is. One a person marked done is
never asked about. The check acts on a change of the issue only (`issue_state`, the state it last acted
on): a person who reopens a follow-up whose issue stays closed has the last word until the issue is
reopened and closed again. An issue gone from the tracker drops its link (named in `issue_gone`) and its
token, so the follow-up is not asked about again and *Create issue* can make another; one in the
tracker's trash (Linear) keeps it for `TRASH_GRACE`, in case it is restored.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, update
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.exceptions import NotFound
from bot.followups.ports import IssueState, issue_name
from bot.incidents.models import ActionItem
from bot.timeline import events
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

LEASE = timedelta(minutes=2)
# A follow-up whose issue was asked about this recently is shown as stored: every dashboard view,
# `/incident action` and post-mortem showing would otherwise ask the tracker about every open issue.
RECHECK_AFTER = timedelta(minutes=1)
# How long a follow-up the tracker closed is still asked about, to be opened again with its issue. An issue
# reopened after that is new work more often than an undone fix, and without a bound every sweep would ask
# about every follow-up ever closed (a sweep asks about 200 at most, least recently asked first).
REOPEN_WINDOW = timedelta(days=30)
# How long an issue seen in the tracker's trash keeps its link: a delete undone within it (Linear keeps
# trashed issues restorable for 30 days) leaves the follow-up as it was; still in the trash after it,
# the issue is taken as gone (and once purged, it is gone at once).
TRASH_GRACE = timedelta(days=1)


async def get(session: AsyncSession, *, item_id: int) -> ActionItem:
    item = await session.get(ActionItem, item_id, populate_existing=True)
    if item is None:
        raise NotFound(f"There is no follow-up #{item_id}.")
    return item


async def claim(session: AsyncSession, *, item_id: int, now: datetime) -> bool:
    result = await session.exec(
        update(ActionItem)
        .where(
            col(ActionItem.id) == item_id,
            col(ActionItem.issue_url).is_(None),
            or_(col(ActionItem.issue_claimed_at).is_(None), col(ActionItem.issue_claimed_at) < now - LEASE),
        )
        .values(issue_claimed_at=now)
    )
    await session.commit()
    return bool(result.rowcount)


async def renew(session: AsyncSession, *, item_id: int, now: datetime) -> None:
    """The claim's holder is still asking the tracker: its lease starts again from now."""
    held = and_(col(ActionItem.issue_url).is_(None), col(ActionItem.issue_claimed_at).is_not(None))
    await session.exec(update(ActionItem).where(col(ActionItem.id) == item_id, held).values(issue_claimed_at=now))
    await session.commit()


async def pending_token(session: AsyncSession, *, item_id: int, token: str) -> str | None:
    """Store `token` as the pending create's marker unless one is there; returns the one stored before
    (a previous attempt may have created the issue under it), or None when this attempt is the first."""
    before = (await get(session, item_id=item_id)).issue_token
    if before is None:
        await session.exec(
            update(ActionItem)
            .where(col(ActionItem.id) == item_id, col(ActionItem.issue_token).is_(None))
            .values(issue_token=token)
        )
        await session.commit()
        before = (await get(session, item_id=item_id)).issue_token
        return None if before == token else before
    return before


async def release(session: AsyncSession, *, item_id: int) -> None:
    await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item_id, col(ActionItem.issue_url).is_(None))
        .values(issue_claimed_at=None)
    )
    await session.commit()


async def record(
    session: AsyncSession,
    *,
    item: ActionItem,
    url: str,
    key: str,
    name: str,
    actor: str,
    now: datetime,
    via: str | None = None,
) -> tuple[ActionItem, bool]:
    """Store the issue's link unless the follow-up has one (the bool: stored by this call): a create that
    outlived its claim must not replace the link stored meanwhile and orphan that issue. The stored link
    stays, and the log names both issues, so a person can close the second."""
    assert item.id is not None
    result = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item.id, col(ActionItem.issue_url).is_(None))
        .values(
            issue_url=url[:500],
            issue_key=key[:200],
            issue_claimed_at=None,
            issue_checked_at=now,
            issue_gone=None,
            issue_state=None,
            issue_trashed_at=None,
        )
    )
    if not result.rowcount:
        await session.commit()
        stored = await get(session, item_id=item.id)
        if stored.issue_key != key:
            kept = issue_name(url=stored.issue_url, key=stored.issue_key) or stored.issue_url
            log.warning(
                "follow-up %s: a second issue, %s (%s), was created while it had %s (%s): %s is kept, close %s",
                *(item.id, name, url, kept, stored.issue_url, kept, name),
            )
        return stored, False
    await timeline.add(
        session,
        incident_id=item.incident_id,
        at=now,
        actor=actor,
        text=f"issue {name} created for the follow-up: {item.text}"[:2000],
        payload=events.ActionItemChanged(item_id=item.id, issue_url=url, issue_key=key, via=via or None),
    )
    await session.commit()
    return await get(session, item_id=item.id), True


async def open_items(session: AsyncSession, *, incident_id: int) -> list[ActionItem]:
    result = await session.exec(
        select(ActionItem)
        .where(col(ActionItem.incident_id) == incident_id, col(ActionItem.done).is_(False))
        .order_by(col(ActionItem.id))
    )
    return list(result.all())


def _stale(now: datetime) -> Any:
    checked = col(ActionItem.issue_checked_at)
    return or_(checked.is_(None), checked <= now - RECHECK_AFTER)


def _watched(now: datetime) -> Any:
    """Open, or marked done by the tracker within `REOPEN_WINDOW` (never one a person marked done)."""
    closed = col(ActionItem.issue_closed_at)
    return or_(
        col(ActionItem.done).is_(False),
        and_(col(ActionItem.done).is_(True), closed.is_not(None), closed >= now - REOPEN_WINDOW),
    )


async def to_check(
    session: AsyncSession, *, incident_id: int | None, now: datetime, limit: int = 200
) -> list[ActionItem]:
    """Watched follow-ups that have an issue not asked about within `RECHECK_AFTER`, least recently checked first."""
    query = select(ActionItem).where(_watched(now), col(ActionItem.issue_key).is_not(None), _stale(now))
    if incident_id is not None:
        query = query.where(col(ActionItem.incident_id) == incident_id)
    query = query.order_by(col(ActionItem.issue_checked_at).is_not(None), col(ActionItem.issue_checked_at)).limit(limit)
    return list((await session.exec(query)).all())


async def claim_checks(session: AsyncSession, *, item_ids: list[int], now: datetime) -> set[int]:
    """Take the right to ask the tracker about these follow-ups now (once across views, the schedule
    and replicas), in one UPDATE; returns the ones taken. A check that then fails, or is not made
    because the tracker rate-limited an earlier one, is not retried before `RECHECK_AFTER`."""
    if not item_ids:
        return set()
    result = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id).in_(item_ids), _watched(now), _stale(now))
        .values(issue_checked_at=now)
        .returning(col(ActionItem.id))
        .execution_options(synchronize_session=False)
    )
    taken = {int(row) for row in result.scalars().all()}
    await session.commit()
    return taken


async def checked(
    session: AsyncSession, *, item_id: int, key: str, state: IssueState, now: datetime
) -> IssueState | None:
    """Store the check and act on its answer; the answer acted on when this call changed the follow-up
    (once across replicas: each change is a conditional UPDATE on the issue checked), else None."""
    restored = {} if state is IssueState.TRASHED else {"issue_trashed_at": None}  # out of the trash, if it was
    await session.exec(update(ActionItem).where(col(ActionItem.id) == item_id).values(issue_checked_at=now, **restored))
    item = await get(session, item_id=item_id)
    changed = await _ON_STATE[state](session, item=item, key=key, now=now)
    await session.commit()
    if not changed:
        return None
    return IssueState.GONE if state is IssueState.TRASHED else state  # acted on: left in the trash too long


async def _moved(session: AsyncSession, *, item: ActionItem, key: str, to: IssueState) -> bool:
    """Record the issue's state; True when it differs from the one last acted on (None: not known yet,
    from before it was kept). Only then does the check touch the follow-up: a person's later word
    (reopened, or done) stands while the issue stays as it was."""
    seen = col(ActionItem.issue_state)
    result = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item.id, col(ActionItem.issue_key) == key, or_(seen.is_(None), seen != to.value))
        .values(issue_state=to.value)
    )
    return bool(result.rowcount)


async def _closed(session: AsyncSession, *, item: ActionItem, key: str, now: datetime) -> bool:
    """Closed in the tracker since the last look: done (a follow-up reopened by a person while its issue
    stayed closed is not closed again)."""
    if not await _moved(session, item=item, key=key, to=IssueState.CLOSED):
        return False
    result = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item.id, col(ActionItem.issue_key) == key, col(ActionItem.done).is_(False))
        .values(done=True, issue_closed_at=now)
    )
    if result.rowcount:
        text = f"follow-up done (its issue was closed): {item.text}"
        await _say(session, item=item, now=now, text=text, done=True)
    return bool(result.rowcount)


async def _open(session: AsyncSession, *, item: ActionItem, key: str, now: datetime) -> bool:
    """Reopened in the tracker since the last look: open again, if the tracker (not a person) marked it done."""
    if not await _moved(session, item=item, key=key, to=IssueState.OPEN):
        return False
    result = await session.exec(
        update(ActionItem)
        .where(
            col(ActionItem.id) == item.id,
            col(ActionItem.issue_key) == key,
            col(ActionItem.done).is_(True),
            col(ActionItem.issue_closed_at).is_not(None),
        )
        .values(done=False, issue_closed_at=None)
    )
    if result.rowcount:
        name = issue_name(url=item.issue_url, key=key) or "its issue"
        text = f"follow-up open again (issue {name} was reopened): {item.text}"
        await _say(session, item=item, now=now, text=text, done=False)
    return bool(result.rowcount)


async def _gone(session: AsyncSession, *, item: ActionItem, key: str, now: datetime) -> bool:
    """Deleted, or moved out of reach: the text stays, the dead link (and its create token) goes."""
    url = item.issue_url  # the row (and this object with it) loses it below
    name = issue_name(url=url, key=key) or url or key
    result = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item.id, col(ActionItem.issue_key) == key)
        .values(
            issue_url=None,
            issue_key=None,
            issue_token=None,
            issue_claimed_at=None,
            issue_closed_at=None,
            issue_gone=name[:500],
            issue_state=None,
            issue_trashed_at=None,
        )
    )
    if result.rowcount:
        text = (
            f"issue {name} is gone from the tracker (deleted, or moved where the bot cannot read it); "
            f"the follow-up keeps its text and can get a new issue: {item.text}"
        )
        await _say(session, item=item, now=now, text=text, gone=True, url=url, key=key)
    return bool(result.rowcount)


async def _trashed(session: AsyncSession, *, item: ActionItem, key: str, now: datetime) -> bool:
    """In the tracker's trash: nothing changes for `TRASH_GRACE` from when the check first saw it there
    (a restore within it reads open or closed again); still there after that, it is gone."""
    since = col(ActionItem.issue_trashed_at)
    first = await session.exec(
        update(ActionItem)
        .where(col(ActionItem.id) == item.id, col(ActionItem.issue_key) == key, since.is_(None))
        .values(issue_trashed_at=now)
    )
    if first.rowcount or item.issue_trashed_at is None or item.issue_trashed_at > now - TRASH_GRACE:
        return False
    return await _gone(session, item=item, key=key, now=now)


async def _say(
    session: AsyncSession,
    *,
    item: ActionItem,
    now: datetime,
    text: str,
    done: bool | None = None,
    gone: bool | None = None,
    url: str | None = None,
    key: str | None = None,
) -> None:
    assert item.id is not None
    await timeline.add(
        session,
        incident_id=item.incident_id,
        at=now,
        actor=TRACKER_ACTOR,
        text=text[:2000],
        payload=events.ActionItemChanged(
            item_id=item.id, issue_url=url or item.issue_url, issue_key=key, done=done, gone=gone
        ),
    )


TRACKER_ACTOR = "issue-tracker"
_ON_STATE = {
    IssueState.CLOSED: _closed,
    IssueState.GONE: _gone,
    IssueState.OPEN: _open,
    IssueState.TRASHED: _trashed,
}
