"""The bot's own messages are on the timeline as their own events; a 📌 on one keeps it only while marked."""

from __future__ import annotations

from tests.harness import BotHarness


async def test_a_pushpin_taken_off_the_bot_s_notice_leaves_it_off_the_timeline(bot: BotHarness) -> None:
    """A 📌 on the bot's status notice stored it as a message (the bot's messages are never stored
    otherwise); the 📌 taken off left it there, unmarked: the status update twice, once by the bot."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    await bot.command("update identified cert expired", channel=channel)
    notice = next(m for m in bot.fake.messages(channel) if "set the status" in (m.text or "") and not m.ephemeral_to)
    item = {"type": "message", "channel": channel, "ts": notice.ts}
    pushpin = {"user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": bot.fake.bot_user_id}
    await bot.event({"type": "reaction_added", **pushpin})
    marked = [(e.key, e.text) for e in await bot.timeline(1) if e.kind == "message"]
    assert marked == [(True, notice.text)]
    await bot.event({"type": "reaction_removed", **pushpin})
    assert [e for e in await bot.timeline(1) if e.kind == "message"] == []
    assert [e.text for e in await bot.timeline(1) if e.kind == "status"] == ["cert expired"]

    # A person's message keeps its place when its 📌 is taken off.
    said = bot.fake.user_says(channel, "U0BOB", "rolled back to v41")
    await bot.event(said)
    item = {"type": "message", "channel": channel, "ts": said["ts"]}
    theirs = {"user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": "U0BOB"}
    await bot.event({"type": "reaction_added", **theirs})
    await bot.event({"type": "reaction_removed", **theirs})
    assert [(e.key, e.text) for e in await bot.timeline(1) if e.kind == "message"] == [(False, "rolled back to v41")]
