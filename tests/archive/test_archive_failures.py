"""An archive that fails with something other than Slack (a database error, a bug) is retried and given
up like a Slack failure, never retried forever; an archive slower than its claim's lease keeps its claim."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.archive import flows
from bot.archive import service as archive_service
from bot.archive.flows import Archiver
from bot.clock import FakeClock, utc
from bot.timeline.models import Kind
from tests.archive.support import archiver, resolved_incident, timers
from tests.harness import BotHarness, until


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


async def test_an_archive_slower_than_the_lease_is_not_taken_over_into_a_second_last_message(
    abot: BotHarness, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Slack is slow to take the last message, past the claim's 2 minutes: another replica's sweep claimed
    the row, looked for the last message before the first post landed, and posted it a second time."""
    monkeypatch.setattr(flows, "RENEW_EVERY", 0.02)  # the renewal's pace, in real seconds
    incident = await resolved_incident(abot, clock)
    channel = incident.channel_id or ""
    first_post: list[str] = []

    def goodbye(args: dict[str, Any]) -> bool:
        if "being archived" in str(args.get("text")) and not first_post:
            first_post.append(channel)
            return True
        return False

    gate = abot.fake.hold("chat.postMessage", goodbye)
    clock.advance(timedelta(days=7, minutes=1))
    first = asyncio.create_task(archiver(abot).run_due())
    await until(lambda: abot.fake.held)
    clock.advance(archive_service.LEASE + timedelta(seconds=1))  # still posting, past the lease

    async def renewed() -> bool:
        [timer] = await timers(abot)
        return timer.claim_expires_at is not None and utc(timer.claim_expires_at) > clock.now()

    for _ in range(500):  # without a renewal, the other replica below shows what follows
        if await renewed():
            break
        await asyncio.sleep(0.01)
    other = Archiver(abot.deps)  # another replica: its own scheduler run, the same database and Slack
    taken = await other.run_due()
    gate.set()
    done = await asyncio.wait_for(first, 5)
    assert taken == 0, "another replica took over an archive still in progress"
    assert done == 1
    goodbyes = [m for m in abot.fake.messages(channel) if "being archived" in m.text]
    assert len(goodbyes) == 1
    assert abot.fake.channels[channel].archived and len(abot.fake.calls_to("conversations.archive")) == 1
    [timer] = await timers(abot)
    assert timer.sent_at is not None and timer.claim_token is None
