"""What an edit or a deletion in an incident channel costs the database, on both engines.

Most `message_changed` events in a busy channel are of messages the timeline never stored; each of them
ran a locking SELECT for nothing before its UPDATE. The order guard (a late retry must not undo a newer
change) is in the UPDATE's WHERE: these pin that, and that the stored message still gets the newer text.
"""

from __future__ import annotations

import asyncio
from typing import Any

from tests.harness import BotHarness
from tests.incidents.test_declaration_cost import recorded

# The incident's lookup by channel, then the event's claim and the change in one transaction.
EDIT = ["BEGIN", "SELECT incidents", "BEGIN", "INSERT INTO processed_events", "UPDATE timeline_events"]


def _edit(channel: str, ts: str, text: str, *, at: str) -> dict[str, Any]:
    message = {"type": "message", "user": "U0BOB", "text": text, "ts": ts, "edited": {"user": "U0BOB", "ts": at}}
    return {"type": "message", "subtype": "message_changed", "channel": channel, "ts": at, "message": message}


def _short(log: list[str]) -> list[str]:
    """`UPDATE timeline_events SET …` as `UPDATE timeline_events`: the statement and its table."""
    words = [line.split() for line in log]
    return [
        " ".join(w[:3] if w[0] in ("INSERT", "DELETE") else w[:2]) if w[0] != "SELECT" else _select(w) for w in words
    ]


def _select(words: list[str]) -> str:
    table = words[words.index("FROM") + 1] if "FROM" in words else words[1].split(".")[0]
    return f"SELECT {table}"


async def _costs(bot: BotHarness, event: dict[str, Any]) -> list[str]:
    with recorded(bot.deps.db.engine.sync_engine) as log:
        await bot.event(event)
    return _short(log)


async def _texts(bot: BotHarness, ts: str) -> list[str]:
    return [e.text for e in await bot.timeline(1) if e.message_ts == ts]


async def test_an_edit_or_deletion_of_a_message_never_stored_costs_one_update(bot: BotHarness) -> None:
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    await bot.event(_edit(channel, "1790000000.000001", "warm-up", at="1790000001.000000"))  # caches
    assert await _costs(bot, _edit(channel, "1790000000.000002", "typo fixed", at="1790000002.000000")) == EDIT
    deletion = {"type": "message", "subtype": "message_deleted", "channel": channel, "deleted_ts": "1790000000.000003"}
    assert await _costs(bot, {**deletion, "ts": "1790000003.000000"}) == EDIT
    assert [e for e in await bot.timeline(1) if e.kind == "message"] == []


async def test_an_edit_of_a_stored_message_costs_one_update_and_the_newer_of_two_racing_wins(bot: BotHarness) -> None:
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    said = bot.fake.user_says(channel, "U0BOB", "rolled back to v41")
    await bot.event(said)
    ts = str(said["ts"])
    assert await _costs(bot, _edit(channel, ts, "rolled back to v40", at="1790000010.000100")) == EDIT
    assert await _texts(bot, ts) == ["rolled back to v40"]
    # Two edits delivered at once, the older one last in the request order: the newer text stays.
    for second in range(11, 14):
        older = _edit(channel, ts, f"v{second} older", at=f"17900000{second}.000100")
        newer = _edit(channel, ts, f"v{second} newer", at=f"17900000{second}.000200")
        await asyncio.gather(bot.event(newer, settle=False), bot.event(older, settle=False))
        await bot.settle()
        assert await _texts(bot, ts) == [f"v{second} newer"]
    # A deletion of a key message takes its markers with it, after its UPDATE locked the row.
    item = {"type": "message", "channel": channel, "ts": ts}
    await bot.event({"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item})
    deletion = {"type": "message", "subtype": "message_deleted", "channel": channel, "deleted_ts": ts}
    assert await _costs(bot, {**deletion, "ts": "1790000015.000000"}) == [*EDIT, "DELETE FROM key_marks"]
    assert [(e.text, e.key) for e in await bot.timeline(1) if e.message_ts == ts] == [("(message deleted)", False)]
