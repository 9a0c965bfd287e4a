"""IncidentChannelReady's catch-up: the pages that went out before the incident's channel existed are
mentioned there once it does; a mention Slack refused is tried again, not recorded and skipped."""

from __future__ import annotations

import pytest

from bot.clock import FakeClock
from bot.config import BotConfig
from bot.db import Database
from bot.escalation.pages import planning
from bot.exceptions import ChatError
from bot.incidents import setup_rows
from tests.escalation.conftest import FakePager, MakeEscalator, declare

ONE_LEVEL = BotConfig.model_validate(
    {"escalation": {"stop_on": "resolve", "levels": [{"name": "First", "after": "0m", "notify": ["U0LEAD"]}]}}
)


async def test_a_catch_up_mention_slack_refused_fails_the_handler_and_its_redelivery_makes_it(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    escalator = make_escalator(ONE_LEVEL)
    incident = await declare(db, clock, channel_id=None)  # its channel is still being set up
    assert incident.id is not None
    async with db.session() as session:
        await planning.plan_pages(session, incident=incident, escalation=ONE_LEVEL.escalation, now=clock.now())
    assert (await escalator.run_due()).pages == 1  # the DM went out; no channel to mention it in yet
    assert pager.reports == []
    async with db.session() as session:
        await setup_rows.set_channel(
            session, incident_id=incident.id, channel_id="C0INC1", channel_name="inc-1", now=clock.now()
        )

    pager.fail_reports = 1
    with pytest.raises(ChatError):  # so IncidentChannelReady's work is retried, not noted done
        await escalator.channel_ready(incident.id)
    assert pager.reports == []
    assert await escalator.channel_ready(incident.id) == 1  # the redelivery
    ((_, report),) = pager.reports
    assert report.paged == ["U0LEAD"]
    assert pager.invites == [("C0INC1", ["U0LEAD"])]  # invited once, by the first delivery
    assert await escalator.channel_ready(incident.id) == 0  # said once: nothing left to catch up
