"""A re-plan after an acknowledgement reads the severities the incident has had since it from the timeline:
a severity event it cannot read (hand-edited, or written by a version that stored something else) is skipped,
not a re-plan that fails at every sweep."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.timeline.models import Kind, TimelineEvent
from tests.escalation.conftest import (
    STANDARD,
    FakePager,
    Start,
    acknowledge,
    config,
    page_rows,
    set_severity,
)

P1_ON_ACK = config(escalation={**STANDARD["escalation"], "severity": {"P1": {"stop_on": "ack"}}})


async def test_an_unreadable_severity_event_is_skipped_and_the_ack_still_holds(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(P1_ON_ACK)
    clock.advance(timedelta(minutes=2))
    await acknowledge(db, clock, incident_id, "U0ALICE")
    await escalator.incident_acknowledged(incident_id, user="U0ALICE")
    clock.advance(timedelta(minutes=1))
    async with db.session() as session:
        session.add(
            TimelineEvent(incident_id=incident_id, kind=Kind.SEVERITY, at=clock.now(), data={"old": "P0", "new": 2})
        )
        session.add(TimelineEvent(incident_id=incident_id, kind=Kind.SEVERITY, at=clock.now(), data={}))
        await session.commit()
    clock.advance(timedelta(minutes=1))
    await set_severity(db, clock, incident_id, "P2")
    await escalator.severity_changed(incident_id)
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.levels() == [1]
    assert await page_rows(db, incident_id) == [(1, 0, True, False), (2, 0, False, True), (3, 0, False, True)]
