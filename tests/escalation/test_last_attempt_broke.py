"""The last attempt allowed at a page breaks on an error of our own (not Slack's) after Slack took a DM and
before its outcome was recorded: the DM is looked for before the page is given up, as a retry would look."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.pages import queries
from bot.timeline import service as timeline
from tests.escalation.conftest import FakePager, Start, config
from tests.escalation.test_paging_retries import failing_dms, page_targets

LEAD_ONLY = config(escalation={"levels": [{"name": "Team lead", "after": "0m", "notify": ["U0LEAD"]}]})
RECORD_DMS = "UPDATE escalation_page_targets SET state="


class BrokenRecord:
    """The next DM outcome's write raises an error of our own (once): the DM went out, its record did not."""

    def __init__(self, db: Database) -> None:
        self.armed = False
        self._engine = db.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._execute)

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.armed and " ".join(statement.split()).startswith(RECORD_DMS):
            self.armed = False
            raise RuntimeError("a bug while recording the DM")

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._execute)


@pytest.fixture
def broken_record(db: Database) -> Iterator[BrokenRecord]:
    broken = BrokenRecord(db)
    yield broken
    broken.close()


async def test_a_dm_sent_by_a_last_attempt_that_broke_before_recording_it_is_recorded_as_sent(
    db: Database, clock: FakeClock, pager: FakePager, start: Start, broken_record: BrokenRecord
) -> None:
    pager.on_dm = failing_dms({"U0LEAD": ["ratelimited", "ratelimited"]})  # Slack's own answer: not posted
    escalator, incident_id = await start(LEAD_ONLY)
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.paged() == []
    broken_record.armed = True
    clock.advance(escalator.retry_backoff * 2)
    await escalator.run_due()
    assert not broken_record.armed  # the third attempt DMed the lead, then broke
    assert pager.paged() == [(1, "U0LEAD")]
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert pager.paged() == [(1, "U0LEAD")]
    assert await page_targets(db, incident_id) == {"U0LEAD": ("sent", 3)}
    async with db.session() as session:
        (row,) = await queries.pages(session, incident_id=incident_id)
        (paged,) = await timeline.events(session, incident_id=incident_id, kinds=["page"])
    assert row.attempts == 3 and row.sent_at is not None and row.sent_to == ["U0LEAD"] and row.failed == {}
    assert paged.data["sent_to"] == ["U0LEAD"] and not paged.data.get("failed")
