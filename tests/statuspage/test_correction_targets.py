"""Which update a correction changes, through the real app: on Statuspage the incident update the bot's own
update became (by the id its answer gave)."""

from __future__ import annotations

from sqlalchemy import update
from sqlmodel import col, select

from bot.statuspage.models import PublicUpdate
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness

TYPO = "We are investigating failed paymnts on db-primary-3."
FIXED = "We are investigating failed payments."


def _edits(statuspage: FakeStatuspage) -> list[str]:
    return [c.path.rsplit("/", 1)[1] for c in statuspage.calls if "/incident_updates/" in c.path]


async def _published(bot: BotHarness, text: str) -> str:
    incident = await bot.declare("P1 service:api Payments fail")
    channel = incident.channel_id or ""
    await bot.command(f"publish major {text}", channel=channel)
    await bot.settle()
    return channel


async def _rows(bot: BotHarness) -> list[PublicUpdate]:
    async with bot.deps.db.session() as session:
        return list((await session.exec(select(PublicUpdate).order_by(col(PublicUpdate.id)))).all())


async def test_an_edit_patches_the_bots_own_update_not_one_added_by_hand_since(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    channel = await _published(bot, TYPO)
    [ours] = statuspage.incidents["inc0001"].updates
    # Someone adds an update on Statuspage's own pages, with the same status: the newest "investigating" there.
    by_hand = statuspage.add_by_hand("inc0001", status="investigating", body="Card payments only.")

    await bot.command(f"publish edit {FIXED}", channel=channel)
    await bot.settle()
    assert statuspage.refused == []
    assert _edits(statuspage) == [ours["id"]]
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [FIXED, "Card payments only."]
    assert by_hand["updated_at"] == by_hand["created_at"]
    assert statuspage.reads == []  # found by its id: no look-up
    [row] = await _rows(bot)
    assert row.statuspage_update_id == ours["id"]  # kept from the create's answer


async def test_an_update_sent_before_ids_were_kept_is_corrected_by_the_old_look_up(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    channel = await _published(bot, TYPO)
    async with bot.deps.db.session() as session:  # as revision 0012 leaves a row sent before it
        await session.exec(update(PublicUpdate).values(statuspage_update_id=None))
        await session.commit()

    await bot.command(f"publish edit {FIXED}", channel=channel)
    await bot.settle()
    [ours] = statuspage.incidents["inc0001"].updates
    assert ours["body"] == FIXED and _edits(statuspage) == [ours["id"]]
    assert [c.method for c in statuspage.reads] == ["GET"]
