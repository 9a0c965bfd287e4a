"""A 📌 or a pin must mark its message key even when the database fails once, before or after the ack.

Slack retries an event only while it gets no 200. So the mark is written before the ack, in the
transaction that claims the event; only the message's text and link (for a message the bot never
stored) may come after it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event as sa_event

from bot.postmortem import service as postmortem
from bot.timeline.models import TimelineEvent
from bot.timeline.shown import NO_TEXT
from tests.fault.support import DatabaseOutage, bot_errors, unreachable_url
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


def _removed(event: dict[str, Any]) -> dict[str, Any]:
    return {**event, "type": event["type"].replace("_added", "_removed")}


async def _marked(bot: BotHarness, marker: str) -> tuple[str, dict[str, Any]]:
    """A stored message marked key by a pin or a 📌 (Slack's own state is left unmarked: no marker remains)."""
    incident = await bot.declare()
    assert incident.channel_id
    said = bot.fake.user_says(incident.channel_id, "U0BOB", "rolled back to v41")
    await bot.event(said)
    ts = str(said["ts"])
    event = (
        _pin(incident.channel_id, ts, "rolled back to v41") if marker == "pin" else _pushpin(incident.channel_id, ts)
    )
    await bot.event(event)
    assert [e.key for e in await _stored(bot, ts)] == [True]
    return ts, event


@pytest.mark.parametrize("marker", ["pin", "pushpin"])
async def test_a_removal_whose_write_fails_once_is_retried_by_slack_and_unmarks(bot: BotHarness, marker: str) -> None:
    """The unmark was written after the ack: a blip there left the message key for good."""
    ts, event = await _marked(bot, marker)
    dbapi = bot.deps.db.engine.dialect.loaded_dbapi
    failing = FailingStore(bot.deps, dbapi.OperationalError, times=1, statement="UPDATE TIMELINE_EVENTS")
    with failing.armed() as store:
        answers = await deliver_as_slack(bot, _removed(event), "EvUnmark")
        late = await bot.event(_removed(event), event_id="EvUnmark", retry_num=len(answers))
    assert [a.status_code for a in answers] == [503, 200], "a removal that was not written must not be acked"
    assert late.status_code == 200
    assert store.attempts == 2, "the late duplicate wrote again"
    assert [e.key for e in await _stored(bot, ts)] == [False]


class Transactions:
    """The statements each committed transaction ran, as their first words (`UPDATE TIMELINE_EVENTS`)."""

    def __init__(self, bot: BotHarness) -> None:
        self.engine = bot.deps.db.engine.sync_engine
        self.current: list[str] = []
        self.committed: list[list[str]] = []

    def statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.current.append(" ".join(statement.upper().split()[:3]))

    def commit(self, conn: Any) -> None:
        self.committed.append(self.current)
        self.current = []

    def rollback(self, conn: Any) -> None:
        self.current = []

    @contextmanager
    def recorded(self) -> Iterator[Transactions]:
        hooks: list[tuple[str, Callable[..., None]]] = [
            ("before_cursor_execute", self.statement),
            ("commit", self.commit),
            ("rollback", self.rollback),
        ]
        for name, hook in hooks:
            sa_event.listen(self.engine, name, hook)
        try:
            yield self
        finally:
            for name, hook in hooks:
                sa_event.remove(self.engine, name, hook)


@pytest.mark.parametrize("marker", ["pin", "pushpin"])
async def test_a_removal_is_claimed_with_its_write_once_and_a_late_retry_does_nothing(
    bot: BotHarness, marker: str
) -> None:
    """Claimed and written in one transaction, so no failure between them loses the unmark; the marker put
    back afterwards is not undone by Slack's late retry of the removal."""
    ts, event = await _marked(bot, marker)
    with Transactions(bot).recorded() as transactions:
        removed = await bot.event(_removed(event), event_id="EvUnmarkOnce")
    assert removed.status_code == 200
    assert [e.key for e in await _stored(bot, ts)] == [False]
    claims = [t for t in transactions.committed if "INSERT INTO PROCESSED_EVENTS" in t]
    assert len(claims) == 1 and "UPDATE TIMELINE_EVENTS SET" in claims[0], transactions.committed
    await bot.event(event)  # marked again, as a new event
    late = await bot.event(_removed(event), event_id="EvUnmarkOnce", retry_num=1)
    assert late.status_code == 200
    assert [e.key for e in await _stored(bot, ts)] == [True]


async def test_a_removal_that_fails_for_good_is_logged_and_answered_200(bot: BotHarness) -> None:
    ts, event = await _marked(bot, "pin")
    dbapi = bot.deps.db.engine.dialect.loaded_dbapi
    failing = FailingStore(bot.deps, dbapi.ProgrammingError, times=10, statement="UPDATE TIMELINE_EVENTS")
    with bot_errors() as errors, failing.armed() as store:
        answer = await bot.event(_removed(event), event_id="EvUnmarkBroken")
    assert answer.status_code == 200, "a retry would fail the same way"
    assert store.attempts == 1
    said = [r.getMessage() for r in errors.records if r.name.startswith("bot.")]
    assert any("INC-1" in line and "pin_removed" in line for line in said), errors.describe()


async def test_a_pushpin_whose_text_could_not_be_read_gets_it_from_the_next_marker(bot: BotHarness) -> None:
    """A 📌 carries no text: it is read from Slack after the ack. A failed read is made again by the next
    📌 or pin of the message, instead of the post-mortem keeping a key event with no text for good."""
    incident = await bot.declare()
    assert incident.channel_id
    ts = str(bot.fake.user_says(incident.channel_id, "U0BOB", "failover to db-2 done")["ts"])  # never delivered
    bot.fake.fail("conversations.history", "internal_error")
    await bot.event(_pushpin(incident.channel_id, ts), event_id="EvFirstPushpin")
    assert [(e.key, e.text) for e in await _stored(bot, ts)] == [(True, "")]
    link = f"/archives/{incident.channel_id}/p{ts.replace('.', '')}"
    (row,) = [line for line in (await _key_rows(bot)) if link in line]
    assert f"{NO_TEXT} ([message](" in row, row  # said, with its link, not an empty cell
    await bot.event({**_pushpin(incident.channel_id, ts), "user": "U0DAN"}, event_id="EvSecondPushpin")
    assert [(e.key, e.text, e.actor) for e in await _stored(bot, ts)] == [(True, "failover to db-2 done", "U0BOB")]
    assert any("failover to db-2 done ([message](" in line and link in line for line in await _key_rows(bot))


async def _key_rows(bot: BotHarness) -> list[str]:
    """The rows of the post-mortem's key timeline (Markdown)."""
    async with bot.deps.db.session() as session:
        text = postmortem.render(await postmortem.build(session, incident_id=1))
    section = text.split("## Timeline of key events", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("|")]


async def test_a_removal_is_acked_in_time_when_slack_is_slow_to_say_what_remains(bot: BotHarness) -> None:
    """Whether another 📌 or the pin remains is read before the ack; a Slack that does not answer
    must not hold the ack past its 3 s (Slack would deliver the removal again): the removal wins."""
    ts, event = await _marked(bot, "pushpin")
    gate = bot.fake.hold("reactions.get")
    try:
        started = asyncio.get_running_loop().time()
        answer = await bot.event(_removed(event), event_id="EvUnmarkSlow")
        waited = asyncio.get_running_loop().time() - started
    finally:
        gate.set()
    assert answer.status_code == 200
    assert waited < 2.5, f"acked after {waited:.1f}s"
    assert [e.key for e in await _stored(bot, ts)] == [False]


@pytest.mark.parametrize("slack", ["answers", "fails"])
async def test_one_person_s_removal_does_not_unmark_a_message_another_still_marks(bot: BotHarness, slack: str) -> None:
    """Carol and Dan both 📌 a message; Carol takes hers off. Whether another remains was read from Slack
    only, and an answer that came too early (before Dan's 📌 landed there) or not at all unmarked the
    message Dan still marks. Each marker is recorded: the message is key while one remains."""
    ts, carol = await _marked(bot, "pushpin")  # Slack's own state has no 📌: an answer that is stale
    dan = {**carol, "user": "U0DAN"}
    await bot.event(dan)
    if slack == "fails":
        bot.fake.fail("reactions.get", "internal_error")
    assert (await bot.event(_removed(carol))).status_code == 200
    assert [e.key for e in await _stored(bot, ts)] == [True], "Dan's 📌 is still on it"
    channel = str(carol["item"]["channel"])
    pin = _pin(channel, ts, "rolled back to v41")
    await bot.event(pin)
    await bot.event(_removed(dan))
    assert [e.key for e in await _stored(bot, ts)] == [True], "the pin is still on it"
    await bot.event(_removed(pin))
    assert [e.key for e in await _stored(bot, ts)] == [False]
    await bot.event(_removed(dan), event_id="EvDanAgain")  # a second removal of the same 📌 changes nothing
    assert [e.key for e in await _stored(bot, ts)] == [False]
