"""A 404 on a correction or a withdrawal is told apart as an update's is: with the page there, the incident
was deleted there by hand (nothing left to do); with the page not there (a wrong page id), the row waits,
/health names the page id, and it goes out once the id is right."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.statuspage import service
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import outbox_check, page_of, published, sync_rows

FIRST = "Checkout is down for everyone on db-primary-3."
FIXED = "Checkout is down for everyone."
NO_PAGE = "Statuspage has no page 'pg_test'"


async def _waits_on_the_page(bot: BotHarness, statuspage: FakeStatuspage) -> None:
    """The last row is pending with the page's error, /health names the page id, and nothing was forgotten."""
    assert statuspage.refused[-1].status == 404
    rows = await sync_rows(bot)
    assert rows[-1].sent_at is None and rows[-1].cancelled_at is None
    assert (rows[-1].error or "").startswith(NO_PAGE)
    check = await outbox_check(bot)
    assert check["status"] == "warn" and NO_PAGE in check["output"], check
    async with bot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) == "inc0001"


async def test_a_correction_that_meets_a_wrong_page_id_waits_and_goes_out_once_it_is_fixed(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.page_id = "pg_moved"  # the page id the bot has is no longer a page there

    await bot.command(f"publish edit {FIXED}", channel=channel)
    await bot.settle()
    await _waits_on_the_page(bot, statuspage)
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIRST]

    statuspage.page_id = "pg_test"  # fixed
    clock.advance(timedelta(minutes=1))
    await page_of(bot).sweep()
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIXED]
    assert all(r.sent_at is not None for r in await sync_rows(bot))
    assert (await outbox_check(bot))["status"] == "pass"

    # Deleted there by hand (the page answers): nothing left to correct, done without a retry.
    del statuspage.incidents["inc0001"]
    await bot.command("publish edit Checkout is down for some cards.", channel=channel)
    await bot.settle()
    assert statuspage.refused[-1].method == "PATCH" and statuspage.reads[-1].path.endswith("/unresolved")
    edit = (await sync_rows(bot))[-1]
    assert edit.sent_at is not None and edit.attempts == 1
    assert (await outbox_check(bot))["status"] == "pass"


async def test_a_withdrawal_that_meets_a_wrong_page_id_waits_and_deletes_once_it_is_fixed(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.page_id = "pg_moved"

    await bot.command("unpublish", channel=channel)
    await bot.settle()
    await _waits_on_the_page(bot, statuspage)
    assert "inc0001" in statuspage.incidents  # not taken for deleted there

    statuspage.page_id = "pg_test"
    clock.advance(timedelta(minutes=1))
    await page_of(bot).sweep()
    assert statuspage.incidents == {}
    assert all(r.sent_at is not None for r in await sync_rows(bot))
    async with bot.deps.db.session() as session:
        assert await service.external_id(session, incident_id=1) is None
