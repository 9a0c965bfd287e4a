"""An update or a correction Statuspage keeps refusing (a 4xx that trying again cannot fix: a body it
rejects, say) is given up as a refused withdrawal is: after a few tries, told in the channel and on the
timeline with what to post by hand, and on /health for a day. The incident's later rows go out meanwhile.
A correction whose update was deleted there by hand (a 404) is only logged and skipped."""

from __future__ import annotations

import logging
from datetime import timedelta

import pytest
from sqlalchemy import update

from bot.clock import FakeClock
from bot.statuspage import service
from bot.statuspage.models import PublicUpdate, SyncAction
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness, until
from tests.statuspage.conftest import outbox_check, page_of, published, sync_rows

FIRST = "Checkout is down for everyone."
REJECTED = "We have found the cause."
LATER = "A fix is being deployed."
TYPO = "Checkout is down for evryone."
REFUSED = "Atlassian Statuspage refused"


async def _retried_until_given_up(bot: BotHarness, clock: FakeClock) -> None:
    for wait in (31, 61):  # the back-off: 30 s, then a minute; the third refusal gives up
        clock.advance(timedelta(seconds=wait))
        await page_of(bot).sweep()


async def _sent_next(bot: BotHarness, statuspage: FakeStatuspage, bodies: list[str]) -> None:
    """The row after the given-up one goes out in the same sweep, which may be a wake-up the scheduler ran
    while the test's own sweep found nothing to claim: paced a second after the last refusal."""
    await until(lambda: [u["body"] for u in statuspage.incidents["inc0001"].updates] == bodies, within=10)
    await bot.settle()


async def test_a_refused_update_is_given_up_told_with_its_text_and_the_later_ones_go_out(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.fail_next(422, times=3)
    await bot.command(f"publish {REJECTED}", channel=channel)
    await bot.settle()
    await bot.command(f"publish {LATER}", channel=channel)  # waits behind the refused one, in order
    await bot.settle()
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIRST]

    await _retried_until_given_up(bot, clock)
    await _sent_next(bot, statuspage, [FIRST, LATER])
    assert [(c.method, c.status) for c in statuspage.refused] == [("PATCH", 422)] * 3
    rows = await sync_rows(bot)
    assert [(r.sent_at is not None, (r.cancel_reason or "")[:9]) for r in rows] == [
        (True, ""),
        (False, "gave up: "),
        (True, ""),
    ]
    [told] = [m.text for m in bot.fake.messages(channel) if REFUSED in m.text]
    assert "422" in told and "post it there by hand" in told and REJECTED in told
    [said] = [e.text for e in await bot.timeline(1) if e.kind == "statuspage" and "given up" in e.text]
    assert "post it there by hand" in said and "422" in said and REJECTED in said
    assert not any("up to date again" in m.text for m in bot.fake.messages(channel))  # it is not

    clock.advance(timedelta(minutes=15))  # tried no more
    await page_of(bot).sweep()
    assert len(statuspage.refused) == 3
    check = await outbox_check(bot)
    assert check["status"] == "warn" and "Statuspage refused a public update of INC-1" in check["output"]
    clock.advance(timedelta(days=1))  # said for a day
    assert (await outbox_check(bot))["status"] == "pass"


async def test_a_correction_of_an_update_given_up_patches_no_other_update_there(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.fail_next(422, times=3)
    await bot.command(f"publish {TYPO}", channel=channel)  # the same status as the first: "investigating"
    await bot.settle()
    await _retried_until_given_up(bot, clock)
    async with bot.deps.db.session() as session:  # as an update sent before revision 0012 keeps no id
        await session.exec(update(PublicUpdate).values(statuspage_update_id=None))
        await session.commit()

    await bot.command(f"publish edit {FIRST}", channel=channel)
    await bot.settle()
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIRST]
    assert not [c for c in statuspage.calls if "/incident_updates/" in c.path]
    assert [r.sent_at is not None for r in await sync_rows(bot)] == [True, False, True]


async def test_a_refused_correction_is_given_up_told_and_the_later_updates_go_out(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, TYPO)
    statuspage.fail_next(400, times=3)
    await bot.command(f"publish edit {FIRST}", channel=channel)
    await bot.settle()
    await bot.command(f"publish {LATER}", channel=channel)
    await bot.settle()

    await _retried_until_given_up(bot, clock)
    await _sent_next(bot, statuspage, [TYPO, LATER])
    assert [c.status for c in statuspage.refused] == [400] * 3
    assert all("/incident_updates/" in c.path for c in statuspage.refused)
    [edit] = [r for r in await sync_rows(bot) if r.action == SyncAction.EDIT]
    assert (edit.cancel_reason or "").startswith("gave up: ")
    [told] = [m.text for m in bot.fake.messages(channel) if REFUSED in m.text]
    assert "the correction of the *investigating* update" in told and FIRST in told and "400" in told
    assert any("correct it there by hand" in e.text for e in await bot.timeline(1) if e.kind == "statuspage")
    check = await outbox_check(bot)
    assert check["status"] == "warn" and "Statuspage refused a correction of INC-1" in check["output"]


async def test_throttles_timeouts_outages_and_a_bad_key_are_never_given_up(
    sbot: BotHarness, statuspage: FakeStatuspage, clock: FakeClock
) -> None:
    bot = sbot
    channel = await published(bot, FIRST)
    statuspage.fail_next(503, times=2)
    statuspage.fail_next(408, times=2)
    statuspage.fail_next(404)
    statuspage.fail_next(401, times=3)  # a key revoked, then replaced: the update goes out then
    statuspage.fail_next(403, times=3)
    await bot.command(f"publish {REJECTED}", channel=channel)
    await bot.settle()
    for wait in (31, 61, 121, 301, 901, 901, 901, 901, 901, 901, 901):
        clock.advance(timedelta(seconds=wait))
        await page_of(bot).sweep()
    assert [c.status for c in statuspage.refused] == [503, 503, 408, 408, 404] + [401] * 3 + [403] * 3
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIRST, REJECTED]
    assert not any("gave up" in (r.cancel_reason or "") for r in await sync_rows(bot))
    assert (await outbox_check(bot))["status"] == "pass"


@pytest.mark.parametrize("by_id", [True, False], ids=["by-its-id", "looked-up"])
async def test_a_correction_of_an_update_deleted_there_by_hand_is_logged_and_skipped(
    sbot: BotHarness, statuspage: FakeStatuspage, caplog: pytest.LogCaptureFixture, by_id: bool
) -> None:
    bot = sbot
    channel = await published(bot, TYPO)
    if by_id:
        statuspage.incidents["inc0001"].updates.clear()  # the update deleted on Statuspage's own pages
    else:  # the whole incident deleted there, and the update sent before its id was kept (revision 0012)
        del statuspage.incidents["inc0001"]
        async with bot.deps.db.session() as session:
            await session.exec(update(PublicUpdate).values(statuspage_update_id=None))
            await session.commit()
    caplog.set_level(logging.WARNING, logger="bot.statuspage.outbox")

    await bot.command(f"publish edit {FIRST}", channel=channel)
    await bot.settle()
    assert [c.status for c in statuspage.refused] == [404]
    assert "deleted there; nothing to correct" in caplog.text
    [edit] = [r for r in await sync_rows(bot) if r.action == SyncAction.EDIT]
    assert edit.sent_at is not None and edit.attempts == 1
    assert not any(REFUSED in m.text or "did not take" in m.text for m in bot.fake.messages(channel))
    if by_id:  # nothing held back: the next update goes out at once
        await bot.command(f"publish {LATER}", channel=channel)
        await bot.settle()
        assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [LATER]
    async with bot.deps.db.session() as session:
        assert await service.oldest_pending_sync(session) is None
