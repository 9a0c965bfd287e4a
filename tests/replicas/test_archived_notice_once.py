"""Two replicas, one database: the notice of a channel a person archived is sent once, though the replica
that took Slack's event died telling it and both replicas' sweeps then try at once."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.clock import FakeClock
from bot.incidents import archived_notice
from tests.archive.support import CONFIG
from tests.archive.test_archive_unarchived import by_person
from tests.fakes.slack_api import FakeSlack
from tests.replicas.conftest import REPLICAS_ONLY, two_bots

pytestmark = REPLICAS_ONLY


async def test_the_notice_of_an_archived_channel_is_sent_once_by_two_replicas(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    async with two_bots(fake_slack, database_url, tmp_path, CONFIG, clock=clock) as replicas:
        a, b = replicas.a, replicas.b
        incident = await a.declare("P1 Checkout down")
        channel = incident.channel_id or ""
        fake_slack.channels[channel].archived = True
        tell = a.deps.incident_chat.tell_channel_archived

        async def dies(**_: object) -> None:
            raise asyncio.CancelledError  # the replica that acked the event dies as it tells

        a.deps.incident_chat.tell_channel_archived = dies  # type: ignore[method-assign]
        assert (await a.event(by_person(clock, channel, "channel_archive"))).status_code == 200
        await replicas.settle()
        a.deps.incident_chat.tell_channel_archived = tell  # type: ignore[method-assign]

        clock.advance(archived_notice.LEASE + timedelta(seconds=1))  # the dead claim's lease runs out
        sends = [archived_notice.send_due(deps) for deps in (a.deps, b.deps) for _ in range(3)]
        told = await asyncio.gather(*sends)
        await replicas.settle()
        lines = [e.text for e in await a.timeline(1) if e.data.get("step") == "archived notice"]
    assert sum(told) == 1
    assert len([m for m in fake_slack.dms("U0ALICE") if "was archived" in m.text]) == 1
    assert lines == ["told <@U0ALICE> that the channel was archived"]
