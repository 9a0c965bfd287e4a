"""`stop_on: ack`: an acknowledgement committed after a page's claim but before its first DM stops the
level. The ack is made to land in that window on purpose (right after the claim is answered), so
nothing depends on timing."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import pytest

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.pages.writes import ClaimedPage, PageClaim, PageWrites
from bot.timeline import service as timeline
from tests.escalation.conftest import STANDARD, FakePager, MakeEscalator, acknowledge, config, declare, page_rows

STOP_ON_ACK = config(escalation={**STANDARD["escalation"], "stop_on": "ack"})


class AckAfterClaim(PageWrites):
    """Claims as usual; right after the first claim it answers, someone acknowledges the incident."""

    def __init__(self, ack: Callable[[], Awaitable[None]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.ack: Callable[[], Awaitable[None]] | None = ack

    async def claim(self, claim: PageClaim) -> ClaimedPage | None:
        claimed = await super().claim(claim)
        if claimed is not None and self.ack is not None:
            ack, self.ack = self.ack, None
            await ack()
        return claimed


@pytest.mark.parametrize("handler_ran", [False, True], ids=["ack-committed", "ack-and-its-handler"])
async def test_an_ack_committed_between_the_claim_and_the_first_dm_stops_the_level(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator, handler_ran: bool
) -> None:
    escalator = make_escalator(STOP_ON_ACK)
    incident = await declare(db, clock)
    assert incident.id is not None
    incident_id = incident.id

    async def ack() -> None:
        await acknowledge(db, clock, incident_id, "U0BOB")
        if handler_ran:  # IncidentAcknowledged's handler cancelled the pending pages too
            await escalator.incident_acknowledged(incident_id, user="U0BOB")

    escalator.rt.writes = AckAfterClaim(ack, db=escalator.rt.send_db, clock=clock, lease=escalator.rt.lease)
    report = await escalator.incident_declared(incident_id)

    assert report.pages == 0
    assert pager.dms == [] and pager.reports == [] and pager.invites == []
    assert (await page_rows(db, incident_id))[0] == (1, 0, False, True)  # level 1: cancelled, never sent
    async with db.session() as session:
        events = await timeline.events(session, incident_id=incident_id, kinds=["page"])
    cancelled = [e for e in events if e.data["action"] == "cancelled" and 1 in e.data["levels"]]
    assert len(cancelled) == 1  # on the timeline once, whoever cancelled it
    assert "Escalation stopped" in cancelled[0].text

    if not handler_ran:
        await escalator.incident_acknowledged(incident_id, user="U0BOB")  # the handler, late
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.dms == []
    assert await page_rows(db, incident_id) == [(1, 0, False, True), (2, 0, False, True), (3, 0, False, True)]
