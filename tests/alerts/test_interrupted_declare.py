"""An auto-declare killed during its channel setup: the stale-declare recovery links the incident it
made (the group names it from the incident's own transaction), even after the alert's text changed."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from bot.alerts.models import DeclareState
from bot.clock import FakeClock
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, groups, incident_count, processor, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import start_bot


async def test_an_interrupted_auto_declare_is_not_declared_again_after_the_alert_text_changed(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    clock = FakeClock()
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=AUTO)
    bot, stop = await start_bot(fake=fake_slack, settings=settings, clock=clock)
    await processor(bot).stop_retry_loop()  # this test drives the sweeps itself
    try:
        firing = p.am_alert(severity="critical", summary="Checkout error rate is 7.5%")
        gate = fake_slack.hold("conversations.create")  # the declaration is setting its channel up
        await send(bot, p.alertmanager([firing]), settle=False)
        for _ in range(500):
            if fake_slack.held:
                break
            await asyncio.sleep(0.01)
        assert fake_slack.held and await incident_count(bot) == 1
        [sync] = [t for t in bot.deps.background.tasks if t.get_name().startswith("show alert group")]
        sync.cancel()  # kill -9: INC-1 is stored, the group's declare is claimed and never completed
        fake_slack.drop_held()
        gate.set()
        await asyncio.gather(sync, return_exceptions=True)

        # Alertmanager re-sends the group (group_interval); its templated summary has a new value.
        await send(bot, p.alertmanager([dict(firing, annotations={"summary": "Checkout error rate is 9.1%"})]))
        clock.advance(timedelta(minutes=11))  # the declare is stale now
        await processor(bot).sweep()
        await bot.settle()
        await processor(bot).sweep()
        await bot.settle()
        [group] = await groups(bot)
        count = await incident_count(bot)
        assert count == 1, f"one alert, {count} incidents: a second channel, everyone paged twice"
        assert group.incident_id == 1 and group.declare_state == DeclareState.DONE
    finally:
        await stop()
