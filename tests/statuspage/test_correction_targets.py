"""Which update a correction changes, through the real app: on Statuspage the incident update the bot's own
update became (by the id its answer gave), after a resolve also the update whose text the "resolved" one
repeats, and in the feed the entry's (and the feed's) `updated`."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import col, select

from bot.clock import FakeClock
from bot.statuspage.models import PublicUpdate
from bot.statuspage.snapshot import iso
from tests.fakes.statuspage import FakeStatuspage
from tests.harness import BotHarness
from tests.statuspage.conftest import public
from tests.statuspage.conftest import published as publish

TYPO = "We are investigating failed paymnts on db-primary-3."
FIXED = "We are investigating failed payments."
ATOM = "{http://www.w3.org/2005/Atom}"


def _edits(statuspage: FakeStatuspage) -> list[str]:
    return [c.path.rsplit("/", 1)[1] for c in statuspage.calls if "/incident_updates/" in c.path]


async def _rows(bot: BotHarness) -> list[PublicUpdate]:
    async with bot.deps.db.session() as session:
        return list((await session.exec(select(PublicUpdate).order_by(col(PublicUpdate.id)))).all())


async def test_an_edit_patches_the_bots_own_update_not_one_added_by_hand_since(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    channel = await publish(bot, TYPO, impact="major")
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
    channel = await publish(bot, TYPO, impact="major")
    async with bot.deps.db.session() as session:  # as revision 0012 leaves a row sent before it
        await session.exec(update(PublicUpdate).values(statuspage_update_id=None))
        await session.commit()

    await bot.command(f"publish edit {FIXED}", channel=channel)
    await bot.settle()
    [ours] = statuspage.incidents["inc0001"].updates
    assert ours["body"] == FIXED and _edits(statuspage) == [ours["id"]]
    assert [c.method for c in statuspage.reads] == ["GET"]


async def test_after_a_resolve_an_edit_corrects_the_resolved_update_and_the_one_it_repeats(
    sbot: BotHarness, statuspage: FakeStatuspage
) -> None:
    bot = sbot
    channel = await publish(bot, TYPO, impact="major")
    await bot.command("resolve fixed", channel=channel)
    await bot.settle()
    assert [u["body"] for u in statuspage.incidents["inc0001"].updates] == [TYPO, TYPO]

    await bot.command(f"publish edit {FIXED}", channel=channel, user="U0BOB")
    await bot.settle()
    reply = bot.last_reply()
    assert "Corrected the last status page update" in reply and "*resolved*" in reply, bot.replies()
    assert "the *investigating* update whose text it repeated" in reply
    _, html, atom = await public(bot)
    for output in (html, atom):
        assert "paymnts" not in output and "db-primary-3" not in output
        assert output.count(FIXED) == 2
    rows = await _rows(bot)
    assert [(r.status, r.message, r.edited_by) for r in rows] == [
        ("investigating", FIXED, "U0BOB"),
        ("resolved", FIXED, "U0BOB"),
    ]
    edits = [e for e in await bot.timeline(1) if e.data.get("change") == "edited"]
    assert sorted(e.data["update_id"] for e in edits) == [r.id for r in rows]
    assert all(e.data["previous"] == TYPO for e in edits)
    [told] = [m.text for m in bot.fake.messages(channel) if "corrected the last status page update" in m.text]
    assert "whose text it repeated" in told

    # Statuspage: both incident updates corrected in place, each by its own id; nothing new, nobody notified.
    assert statuspage.refused == []
    updates = statuspage.incidents["inc0001"].updates
    assert [u["body"] for u in updates] == [FIXED, FIXED]
    assert sorted(_edits(statuspage)) == sorted(u["id"] for u in updates)


async def test_an_edit_moves_the_feed_entrys_updated_and_the_feeds(sbot: BotHarness, clock: FakeClock) -> None:
    bot = sbot
    channel = await publish(bot, TYPO, impact="major")
    published = clock.now()
    clock.advance(timedelta(minutes=7))
    await bot.command(f"publish edit {FIXED}", channel=channel)

    _, _, atom = await public(bot)
    feed = ET.fromstring(atom)
    [entry] = feed.findall(f"{ATOM}entry")
    assert entry.findtext(f"{ATOM}content") == FIXED
    assert entry.findtext(f"{ATOM}published") == iso(published)
    assert entry.findtext(f"{ATOM}updated") == iso(clock.now())
    assert feed.findtext(f"{ATOM}updated") == iso(clock.now())


async def test_an_edit_moves_the_incidents_updated_at_in_summary_json(sbot: BotHarness, clock: FakeClock) -> None:
    bot = sbot
    channel = await publish(bot, TYPO, impact="major")
    published = clock.now()
    clock.advance(timedelta(minutes=3))
    await bot.command("publish We have found the cause.", channel=channel)
    second = clock.now()
    before, _, _ = await public(bot)
    assert before["incidents"][0]["updated_at"] == iso(second)
    clock.advance(timedelta(minutes=7))
    await bot.command(f"publish edit {FIXED}", channel=channel)

    summary, _, _ = await public(bot)
    [incident] = summary["incidents"]
    assert incident["updated_at"] == iso(clock.now())  # as on Statuspage: an edited update changes its incident
    assert incident["created_at"] == incident["started_at"] == iso(published)
    [last, first] = incident["incident_updates"]
    assert (last["created_at"], last["updated_at"]) == (iso(second), iso(clock.now()))
    assert first["updated_at"] == iso(published)
