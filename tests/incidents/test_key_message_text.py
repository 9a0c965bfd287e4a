"""A key message's text, when the 📌 that stored it could not say it: filled by what Slack says later,
never put back over a newer edit or a deletion."""

from __future__ import annotations

from typing import Any

from bot.postmortem import service as postmortem
from bot.timeline.shown import NO_TEXT, UNKNOWN_AUTHOR
from tests.harness import BotHarness, until


def _pushpin(channel: str, ts: str) -> dict[str, Any]:
    item = {"type": "message", "channel": channel, "ts": ts}
    return {"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": "U0BOB"}


async def _stored(bot: BotHarness, ts: str) -> list[tuple[str, str | None, bool]]:
    return [(e.text, e.actor, e.key) for e in await bot.timeline(1) if e.message_ts == ts]


async def test_a_message_event_that_comes_after_its_pushpin_gives_the_key_line_its_text(bot: BotHarness) -> None:
    """Slack delivers the message late (its first delivery got a 503, or events crossed) after a 📌 whose
    read of the channel failed: the message event, with its text, was dropped as already stored, and
    the key line said only that its text could not be read."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    said = bot.fake.user_says(channel, "U0BOB", "failover to db-2 done")
    ts = str(said["ts"])
    bot.fake.fail("conversations.history", "internal_error")
    await bot.event(_pushpin(channel, ts))
    assert await _stored(bot, ts) == [("", "U0BOB", True)]
    await bot.event(said)
    assert await _stored(bot, ts) == [("failover to db-2 done", "U0BOB", True)]
    await bot.command("timeline", channel=channel)
    reply = bot.last_reply()
    assert "failover to db-2 done" in reply and NO_TEXT not in reply, reply
    await bot.event(said, event_id="EvLateAgain")  # a message stored with its text is left as it is
    assert await _stored(bot, ts) == [("failover to db-2 done", "U0BOB", True)]


async def _marked_while_read(bot: BotHarness, change: dict[str, Any]) -> list[tuple[str, str | None, bool]]:
    """A 📌 on a message the bot never stored; `change` (an edit, a deletion) comes while the bot's read of
    the channel, made after the ack, has been answered by Slack but not yet heard back."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    ts = str(bot.fake.user_says(channel, "U0BOB", "rolled back to v41")["ts"])  # its event never came
    gate = bot.fake.hold_after("conversations.history")
    await bot.event(_pushpin(channel, ts), settle=False)
    await until(lambda: bot.fake.held)
    answer = await bot.event({**change, "channel": channel, **_message_ts(change, ts)}, settle=False)
    assert answer.status_code == 200
    gate.set()
    await bot.settle()
    return await _stored(bot, ts)


def _message_ts(change: dict[str, Any], ts: str) -> dict[str, Any]:
    if change["subtype"] == "message_deleted":
        return {"deleted_ts": ts}
    return {"message": {**change["message"], "ts": ts}}


async def test_an_edit_made_while_the_pushpin_s_read_is_answered_is_not_undone_by_it(bot: BotHarness) -> None:
    edit: dict[str, Any] = {"type": "message", "subtype": "message_changed", "ts": "1790000009.000000"}
    edit["message"] = {"type": "message", "user": "U0BOB", "text": "rolled back to v40, not v41"}
    assert await _marked_while_read(bot, edit) == [("rolled back to v40, not v41", "U0BOB", True)]


async def test_a_deletion_made_while_the_pushpin_s_read_is_answered_is_not_undone_by_it(bot: BotHarness) -> None:
    deletion = {"type": "message", "subtype": "message_deleted", "ts": "1790000009.000000"}
    assert [text for text, _, _ in await _marked_while_read(bot, deletion)] == ["(message deleted)"]


def _edit(channel: str, ts: str, text: str, *, at: str) -> dict[str, Any]:
    message = {"type": "message", "user": "U0BOB", "text": text, "ts": ts, "edited": {"user": "U0BOB", "ts": at}}
    return {"type": "message", "subtype": "message_changed", "channel": channel, "ts": at, "message": message}


async def test_an_older_edit_delivered_late_does_not_undo_a_newer_edit_or_a_deletion(bot: BotHarness) -> None:
    """Slack retries an edit it got a 503 for a minute later, after the next edit (or the deletion) went
    through: the key line went back to the older words, or a deleted message's words came back."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    said = bot.fake.user_says(channel, "U0BOB", "rolled back to v41")
    await bot.event(said)
    ts = str(said["ts"])
    await bot.event(_pushpin(channel, ts))
    first = _edit(channel, ts, "rolled back to v40", at="1790000010.000100")
    await bot.event(_edit(channel, ts, "rolled back to v40, checkout recovering", at="1790000020.000100"))
    await bot.event(first, event_id="EvFirstEdit", retry_num=1)
    assert await _stored(bot, ts) == [("rolled back to v40, checkout recovering", "U0BOB", True)]
    deleted = {"type": "message", "subtype": "message_deleted", "channel": channel, "deleted_ts": ts}
    await bot.event({**deleted, "ts": "1790000030.000100"})
    await bot.event(_edit(channel, ts, "the db password is hunter2", at="1790000025.000100"), retry_num=1)
    assert [text for text, _, _ in await _stored(bot, ts)] == ["(message deleted)"]


async def test_a_pushpin_on_a_thread_reply_the_bot_never_stored_gets_the_reply_s_text(bot: BotHarness) -> None:
    """The channel's history has no thread replies: a 📌 on one kept the "could not be read" line for good.
    A reaction event does not say the message is a reply; Slack finds it by its own ts in its thread."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    parent = str(bot.fake.user_says(channel, "U0BOB", "checking the db")["ts"])
    ts = str(bot.fake.user_says(channel, "U0DAN", "replica lag is 40 s", thread_ts=parent)["ts"])  # never delivered
    bot.fake.user_says(channel, "U0BOB", "thanks", thread_ts=parent)
    await bot.event({**_pushpin(channel, ts), "item_user": "U0DAN"})
    assert await _stored(bot, ts) == [("replica lag is 40 s", "U0DAN", True)]
    [asked] = bot.fake.calls_to("conversations.replies")
    assert (asked.args["channel"], asked.args["ts"]) == (channel, ts)
    await bot.command("timeline", channel=channel)
    assert "replica lag is 40 s" in bot.last_reply()


async def test_a_pushpin_that_does_not_name_the_author_keeps_it_unknown_never_the_pinner(bot: BotHarness) -> None:
    """A 📌 event without `item_user`, and Slack's history unreadable: the person who added the 📌 was
    recorded, and shown everywhere, as the message's author until the message's own event came."""
    incident = await bot.declare("P1 Checkout down")
    channel = incident.channel_id
    assert channel
    said = bot.fake.user_says(channel, "U0BOB", "failover to db-2 done")
    ts = str(said["ts"])
    bot.fake.fail("conversations.history", "internal_error")
    pushpin = _pushpin(channel, ts)
    del pushpin["item_user"]
    await bot.event(pushpin)
    assert await _stored(bot, ts) == [("", None, True)]
    await bot.command("timeline", channel=channel)
    [line] = [line for line in bot.last_reply().splitlines() if NO_TEXT in line]
    assert UNKNOWN_AUTHOR in line and "U0CAROL" not in line, line
    async with bot.deps.db.session() as session:
        document = postmortem.render(await postmortem.build(session, incident_id=1))
    rows = [row for row in document.splitlines() if row.startswith("|") and NO_TEXT in row]
    assert len(rows) == 2, rows  # the key timeline and the full one
    assert all(UNKNOWN_AUTHOR in row and "U0CAROL" not in row for row in rows), rows
    await bot.event(said)  # the message's own event names its author
    assert await _stored(bot, ts) == [("failover to db-2 done", "U0BOB", True)]


async def test_a_pushpin_on_the_bot_s_summary_keeps_the_summary_s_latest_words(bot: BotHarness) -> None:
    """Someone 📌s the pinned summary, then the incident moves on: the bot edits the summary in place, but
    Bolt drops the bot's own `message_changed`, so the key line kept the words of the moment it was marked
    (the post-mortem's key timeline said "investigating" for an incident being monitored)."""
    incident = await bot.declare("P1 Checkout down")
    channel, ts = incident.channel_id, incident.summary_ts
    assert channel and ts
    item = {"type": "message", "channel": channel, "ts": ts}
    pushpin = {"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": "UBOT"}
    await bot.event(pushpin)
    assert await _stored(bot, ts) == [("INC-1 [P1] Checkout down: investigating", "UBOT", True)]
    await bot.command("update monitoring", channel=channel)
    summary = bot.fake.channels[channel].find(ts)
    assert summary is not None and summary.text == "INC-1 [P1] Checkout down: monitoring"
    assert await _stored(bot, ts) == [(summary.text, "UBOT", True)]
    async with bot.deps.db.session() as session:
        document = postmortem.render(await postmortem.build(session, incident_id=1))
    assert "Checkout down: monitoring" in document and "Checkout down: investigating" not in document
