"""A 404 when the bot adds an update: the incident deleted on Statuspage by hand (the page still answers) is
not re-created by the bot and holds nothing back; a page that is not there (a wrong page id) keeps every
update waiting, and /health says which page id was not found."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.exc import OperationalError

from bot.clock import FakeClock
from bot.statuspage import service
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import outbox_check, page_of, published, sync_rows

FIRST = "Checkout is down for everyone."
SECOND = "We have found the cause."
THIRD = "A fix is being deployed."
AGAIN = "Checkout is still failing for some cards."
DELETED = "was deleted on Atlassian Statuspage"


async def test_an_incident_deleted_there_by_hand_is_told_once_not_recreated_and_blocks_nothing(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.fail_next(503)  # Statuspage is down a moment: the next two wait, in order
    await bot.command(f"publish {SECOND}", channel=channel)
    await bot.command(f"publish {THIRD}", channel=channel)
    await bot.settle()
    del statuspage.incidents["inc0001"]  # meanwhile someone deletes it on Statuspage's own pages

    clock.advance(timedelta(seconds=31))
    await page_of(bot).sweep()
    assert [(c.method, c.status) for c in statuspage.refused] == [("PATCH", 503), ("PATCH", 404)]
    assert statuspage.incidents == {}  # not re-created by the update queued behind
    rows = await sync_rows(bot)
    assert [(r.sent_at is not None, (r.cancel_reason or "")[:14]) for r in rows] == [
        (True, ""),
        (False, "deleted there:"),
        (False, "deleted there:"),
    ]
    async with bot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) is None
    [told] = [m.text for m in bot.fake.messages(channel) if DELETED in m.text]
    assert SECOND in told and "1 queued behind it" in told and "`/incident publish <message>` again" in told
    [said] = [e.text for e in await bot.timeline(1) if e.kind == "statuspage" and "deleted on Statuspage" in e.text]
    assert SECOND in said and "/incident publish" in said

    clock.advance(timedelta(minutes=15))  # tried no more, told no more
    await page_of(bot).sweep()
    assert len(statuspage.refused) == 2 and len(statuspage.calls) == 1
    assert len([m for m in bot.fake.messages(channel) if DELETED in m.text]) == 1
    assert (await outbox_check(bot))["status"] == "pass"

    # Publishing again, once told, creates a new incident there.
    await bot.command(f"publish {AGAIN}", channel=channel)
    await bot.settle()
    assert statuspage.calls[-1].method == "POST"
    assert [u["body"] for u in statuspage.incidents["inc0002"].updates] == [AGAIN]


@contextmanager
def timeline_write_fails_once(bot: BotHarness) -> Iterator[None]:
    """The process dies (here: the database refuses) at the skip's timeline write, after its other writes."""
    engine = bot.deps.db.engine.sync_engine
    error = bot.deps.db.engine.dialect.loaded_dbapi.OperationalError
    left = [1]

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO TIMELINE_EVENTS") and left[0]:
            left[0] -= 1
            raise error("injected: died before the timeline write")

    event.listen(engine, "before_cursor_execute", before)
    try:
        yield
    finally:
        event.remove(engine, "before_cursor_execute", before)


async def test_a_deletion_there_met_by_a_run_that_dies_is_skipped_and_told_once_by_the_next(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.fail_next(503)
    await bot.command(f"publish {SECOND}", channel=channel)
    await bot.command(f"publish {THIRD}", channel=channel)
    await bot.settle()
    del statuspage.incidents["inc0001"]

    clock.advance(timedelta(seconds=31))
    with timeline_write_fails_once(bot), pytest.raises(OperationalError):
        await page_of(bot).sweep()
    # Nothing of the skip was kept: the row waits for its claim to lapse, the id there is still known.
    rows = await sync_rows(bot)
    assert [(r.sent_at, r.cancelled_at) for r in rows[1:]] == [(None, None), (None, None)]
    async with bot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) == "inc0001"
    assert not [m for m in bot.fake.messages(channel) if DELETED in m.text]

    clock.advance(timedelta(minutes=6))  # the dead run's claim lapses; the next run does it all, once
    await page_of(bot).sweep()
    clock.advance(timedelta(minutes=15))
    await page_of(bot).sweep()
    assert statuspage.incidents == {}
    assert [(r.cancel_reason or "")[:14] for r in (await sync_rows(bot))[1:]] == ["deleted there:"] * 2
    assert len([m for m in bot.fake.messages(channel) if DELETED in m.text]) == 1
    said = [e for e in await bot.timeline(1) if e.kind == "statuspage" and "deleted on Statuspage" in e.text]
    assert len(said) == 1
    async with bot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) is None


async def test_a_resolve_after_a_deletion_there_does_not_create_a_resolved_incident_there(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    del statuspage.incidents["inc0001"]  # someone takes it off Statuspage by hand
    await bot.command(f"publish {SECOND}", channel=channel)
    await bot.settle()
    assert len([m for m in bot.fake.messages(channel) if DELETED in m.text]) == 1

    await bot.command("resolve Fixed the pool size", channel=channel)
    await bot.settle()
    clock.advance(timedelta(minutes=15))
    await page_of(bot).sweep()
    await bot.settle()
    assert statuspage.incidents == {}  # no incident created there already resolved, no subscriber notified
    assert [c.method for c in statuspage.calls] == ["POST"]  # the first publish only
    async with bot.deps.db.session() as session:  # our own page still says it is resolved
        last = await service.last_update(session, incident_id=1)
    assert last is not None and last.status == "resolved"


async def test_a_page_that_is_not_there_keeps_the_updates_and_health_names_its_id(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    statuspage.page_id = "pg_real"  # bot.yml says pg_test: a wrong page id
    channel = await published(bot, FIRST)
    assert [(c.method, c.status) for c in statuspage.refused] == [("POST", 404)]

    check = await outbox_check(bot)  # configuration: said at once, not after the outbox's usual delay
    assert check["status"] == "warn", check
    assert "Statuspage has no page 'pg_test'" in check["output"] and "page_id" in check["output"]
    [told] = [m.text for m in bot.fake.messages(channel) if "did not take" in m.text]
    assert "no page 'pg_test'" in told

    for wait in (31, 61, 121):  # retried for as long as it takes (not given up as a refusal)
        clock.advance(timedelta(seconds=wait))
        await page_of(bot).sweep()
    assert [(c.method, c.status) for c in statuspage.refused][-1] == ("GET", 404)  # the lost-answer look-up
    [row] = await sync_rows(bot)
    assert row.sent_at is None and row.cancelled_at is None
    assert "Statuspage has no page 'pg_test'" in (await outbox_check(bot))["output"]

    statuspage.page_id = "pg_test"  # fixed
    clock.advance(timedelta(minutes=5))
    await page_of(bot).sweep()
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIRST]
    assert (await outbox_check(bot))["status"] == "pass"
