"""A 📌 or a pin must mark its message key even when the database fails once, before or after the ack.

Slack retries an event only while it gets no 200. So the mark is written before the ack, in the
transaction that claims the event; only the message's text and link (for a message the bot never
stored) may come after it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from bot.timeline.models import TimelineEvent
from tests.fault.support import DatabaseOutage, unreachable_url
from tests.fault.test_message_store import AfterTheAck, FailingStore, deliver_as_slack
from tests.harness import BotHarness


def _pushpin(channel: str, ts: str, *, author: str | None = "U0BOB") -> dict[str, Any]:
    item = {"type": "message", "channel": channel, "ts": ts}
    return {"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item, "item_user": author}


def _pin(channel: str, ts: str, text: str) -> dict[str, Any]:
    message = {"type": "message", "user": "U0BOB", "ts": ts, "text": text}
    item = {"type": "message", "channel": channel, "message": message}
    return {"type": "pin_added", "user": "U0CAROL", "channel_id": channel, "item": item}


async def _stored(bot: BotHarness, ts: str) -> list[TimelineEvent]:
    return [e for e in await bot.timeline(1) if e.message_ts == ts]


async def test_a_pushpin_whose_mark_fails_once_is_retried_by_slack_and_marks_once(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    said = bot.fake.user_says(incident.channel_id, "U0BOB", "rolled back to v41")
    await bot.event(said)
    ts = str(said["ts"])
    dbapi = bot.deps.db.engine.dialect.loaded_dbapi
    failing = FailingStore(bot.deps, dbapi.OperationalError, times=1, statement="UPDATE TIMELINE_EVENTS")
    with failing.armed() as store:
        answers = await deliver_as_slack(bot, _pushpin(incident.channel_id, ts), "EvPushpin")
        late = await bot.event(_pushpin(incident.channel_id, ts), event_id="EvPushpin", retry_num=len(answers))
    assert [a.status_code for a in answers] == [503, 200], "a mark that was not written must not be acked"
    assert late.status_code == 200
    assert store.attempts == 2, "the late duplicate wrote again"
    assert [(e.text, e.key) for e in await _stored(bot, ts)] == [("rolled back to v41", True)]


@pytest.mark.parametrize("marker", ["pin", "pushpin"])
async def test_a_mark_on_a_message_never_stored_survives_a_failure_after_the_ack(
    bot: BotHarness, database_url: str, tmp_path: Path, marker: str
) -> None:
    """Posted before the bot joined (or by the bot): the message is fetched or linked after the ack,
    and the database goes away as that is done. Once it is back, the message is a key event."""
    incident = await bot.declare()
    assert incident.channel_id
    posted = bot.fake.messages(incident.channel_id)[0]  # the bot's summary: never a message event
    if marker == "pin":
        event = _pin(incident.channel_id, posted.ts, "the summary")
    else:
        event = _pushpin(incident.channel_id, posted.ts, author=bot.fake.bot_user_id)
    outage = DatabaseOutage(bot.deps, unreachable_url(database_url, str(tmp_path)))
    bot.deps.chat = AfterTheAck(bot.deps.chat, outage)  # type: ignore[assignment]
    try:
        answers = await deliver_as_slack(bot, event, "EvMarkUnseen")
    finally:
        await outage.close()
        bot.deps.chat = bot.deps.chat.real  # type: ignore[attr-defined]
    assert [a.status_code for a in answers] == [200]
    stored = await _stored(bot, posted.ts)
    assert [e.key for e in stored] == [True]
    if marker == "pin":  # the pin event carries the message: nothing of it waits for the ack
        assert (stored[0].actor, stored[0].text) == ("U0BOB", "the summary")
    else:  # who wrote it is in the event; its text only Slack can say, after the ack
        assert stored[0].actor == bot.fake.bot_user_id
