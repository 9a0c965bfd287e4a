"""An archive that fails with something other than Slack (a database error, a bug) is retried and given
up like a Slack failure, never retried forever."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.archive import flows
from bot.archive import service as archive_service
from bot.clock import FakeClock
from bot.timeline.models import Kind
from tests.archive.support import archiver, resolved_incident, timers
from tests.harness import BotHarness


async def test_an_archive_failing_on_the_database_is_given_up_after_the_attempts_and_said_why(
    abot: BotHarness, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim's lease expired and the next sweep tried again, forever: only Slack errors were counted."""

    async def locked(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("UPDATE channel_archives", {}, Exception("database is locked"))

    monkeypatch.setattr(archive_service, "said_goodbye", locked)
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    clock.advance(timedelta(days=7, minutes=1))
    for _ in range(flows.MAX_ATTEMPTS + 3):
        assert await archiver(abot).sweep() == 0
        clock.advance(timedelta(hours=2))  # past every back-off and lease

    [timer] = await timers(abot)
    assert timer.attempts == flows.MAX_ATTEMPTS
    assert timer.cancelled_at is not None and timer.claim_token is None
    assert "OperationalError" in (timer.error or "") and "database is locked" in (timer.error or "")
    last = (await abot.timeline(incident.id or 0))[-1]
    assert last.kind == Kind.UNFINISHED_WORK and last.text.startswith("The channel was not archived")
    assert "OperationalError" in last.text and "OperationalError" in str(last.data)
    assert "Slack" not in last.text.split("To do by hand")[0]  # Slack did nothing wrong
    [notice] = [m.text for m in abot.fake.messages(channel) if "was not archived" in m.text]
    assert "OperationalError" in notice and f"after {flows.MAX_ATTEMPTS} attempts" in notice
    goodbyes = [m for m in abot.fake.messages(channel) if "this channel is being archived" in m.text]
    assert len(goodbyes) == 1  # every retry found the one posted by the first attempt
    assert not abot.fake.channels[channel].archived
