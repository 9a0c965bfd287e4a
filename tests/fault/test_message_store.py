"""A channel message must reach the timeline even when storing it fails once.

Slack retries an event only when it got no 200 (an error status or no answer within 3 s), and
never after one. So whatever fails after the bot answered 200 must not be what keeps the message;
a failure before the answer is Slack's to retry; and a failure that would repeat is logged, not
retried for ever.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import event as sa_event

from bot.deps import Deps
from bot.timeline.models import Kind
from tests.fault.support import DatabaseOutage, bot_errors, unreachable_url
from tests.harness import BotHarness


class FailingStore:
    """Makes the database refuse the next `times` timeline writes (`statement`) with the driver's `error`."""

    def __init__(
        self, deps: Deps, error: type[Exception], *, times: int, statement: str = "INSERT INTO TIMELINE_EVENTS"
    ) -> None:
        self.engine = deps.db.engine.sync_engine
        self.error = error
        self.statement = statement
        self.left = times
        self.attempts = 0

    def __call__(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if not statement.lstrip().upper().startswith(self.statement):
            return
        self.attempts += 1
        if self.left > 0:
            self.left -= 1
            raise self.error("injected: the timeline write failed")

    @contextmanager
    def armed(self) -> Iterator[FailingStore]:
        sa_event.listen(self.engine, "before_cursor_execute", self)
        try:
            yield self
        finally:
            sa_event.remove(self.engine, "before_cursor_execute", self)


async def deliver_as_slack(bot: BotHarness, event: dict[str, Any], event_id: str) -> list[httpx.Response]:
    """Slack's side: the delivery, then its retries while the answer is not a 2xx (three at most)."""
    answers = [await bot.event(event, event_id=event_id)]
    while answers[-1].status_code >= 300 and len(answers) < 4:
        answers.append(await bot.event(event, event_id=event_id, retry_num=len(answers)))
    return answers


async def _messages(bot: BotHarness) -> list[str]:
    return [e.text for e in await bot.timeline(1) if e.kind == Kind.MESSAGE]


async def test_a_store_that_fails_once_keeps_the_message_exactly_once(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    event = bot.fake.user_says(incident.channel_id, "U0BOB", "primary failed over to db-2")
    dbapi = bot.deps.db.engine.dialect.loaded_dbapi
    with FailingStore(bot.deps, dbapi.OperationalError, times=1).armed() as store:
        answers = await deliver_as_slack(bot, event, "EvBlip1")
        # A late duplicate (a retry sent as a slow 200 crossed it) stores nothing more.
        late = await bot.event(event, event_id="EvBlip1", retry_num=len(answers))
    assert [a.status_code for a in answers] == [503, 200], "a message that was not stored must not be acked"
    assert late.status_code == 200 and store.attempts == 2
    assert await _messages(bot) == ["primary failed over to db-2"]


class AfterTheAck:
    """The incident chat port, unchanged, except that its permalink call (made after the ack) fails:
    the database goes away as it is made, or the call itself raises."""

    def __init__(self, real: Any, outage: DatabaseOutage | None) -> None:
        self.real = real
        self.outage = outage

    async def permalink(self, **kwargs: Any) -> str | None:
        if self.outage is None:
            raise RuntimeError("injected: the permalink call broke")
        link: str | None = await self.real.permalink(**kwargs)
        self.outage.start()
        return link

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


@pytest.mark.parametrize("failure", ["database outage", "permalink raises"])
async def test_a_failure_after_the_ack_loses_no_message(
    bot: BotHarness, database_url: str, tmp_path: Path, failure: str
) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    event = bot.fake.user_says(incident.channel_id, "U0BOB", "rolled back to v41")
    outage = DatabaseOutage(bot.deps, unreachable_url(database_url, str(tmp_path)))
    bot.deps.chat = AfterTheAck(bot.deps.chat, outage if failure == "database outage" else None)  # type: ignore[assignment]
    try:
        answers = await deliver_as_slack(bot, event, "EvAfterAck")
    finally:
        await outage.close()
        bot.deps.chat = bot.deps.chat.real  # type: ignore[attr-defined]
    assert [a.status_code for a in answers] == [200]
    assert await _messages(bot) == ["rolled back to v41"]


async def test_a_store_that_fails_for_good_is_logged_and_not_retried(bot: BotHarness) -> None:
    incident = await bot.declare()
    assert incident.channel_id
    event = bot.fake.user_says(incident.channel_id, "U0BOB", "a message the schema refuses")
    dbapi = bot.deps.db.engine.dialect.loaded_dbapi
    with bot_errors() as errors, FailingStore(bot.deps, dbapi.ProgrammingError, times=10).armed() as store:
        first = await bot.event(event, event_id="EvBroken")
    # A 2xx: Slack is not asked to retry what would fail the same way, and the bot does not loop on it.
    assert first.status_code == 200
    assert store.attempts == 1
    assert await _messages(bot) == []
    said = [r.getMessage() for r in errors.records if r.name.startswith("bot.")]
    assert any("INC-1" in line and str(event["ts"]) in line for line in said), errors.describe()
