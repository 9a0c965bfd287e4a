"""The last attempt allowed at a page (a status reminder) breaks on an error of our own (not Slack's) after
Slack took a DM (the reminder's post) and before its outcome was recorded: it is looked for before the page
(reminder) is given up, as a retry would look."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.models import ReminderKind
from bot.escalation.pages import queries
from bot.escalation.reminders import rows as reminder_rows
from bot.timeline import service as timeline
from tests.escalation.conftest import FakePager, Start, config
from tests.escalation.test_paging_retries import failing_dms, page_targets

LEAD_ONLY = config(escalation={"levels": [{"name": "Team lead", "after": "0m", "notify": ["U0LEAD"]}]})
RECORD_DMS = "UPDATE escalation_page_targets SET state="
RECORD_REMINDER = "UPDATE escalation_reminders SET sent_at="


class BrokenRecord:
    """The next DM outcome's write (`prefix`'s) raises an error of our own (once): the DM went out, its
    record did not."""

    def __init__(self, db: Database) -> None:
        self.armed = False
        self.prefix = RECORD_DMS
        self._engine = db.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._execute)

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.armed and " ".join(statement.split()).startswith(self.prefix):
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


async def test_a_reminder_posted_by_a_last_attempt_that_broke_before_recording_it_is_recorded_as_sent(
    db: Database, clock: FakeClock, pager: FakePager, start: Start, broken_record: BrokenRecord
) -> None:
    pager.fail_reminders = 2  # Slack's own answer (channel_not_found): not posted
    escalator, incident_id = await start(declared_by="U0BOB")
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    clock.advance(escalator.retry_backoff)
    await escalator.run_due()
    assert pager.reminders == []
    broken_record.prefix, broken_record.armed = RECORD_REMINDER, True
    clock.advance(escalator.retry_backoff * 2)
    await escalator.run_due()
    assert not broken_record.armed  # the third attempt posted the reminder, then broke
    assert [r.reminder_id for _, r in pager.reminders] == [1]
    async with db.session() as session:
        (first, *_) = await reminder_rows.reminders(session, incident_id=incident_id, kind=ReminderKind.STATUS_UPDATE)
        events = await timeline.events(session, incident_id=incident_id, kinds=["reminder"])
    assert first.attempts == 3 and first.sent_at is not None and first.sent_to == ["U0BOB"] and first.error is None
    assert [e.text for e in events] == ["Reminded the channel about the status update"]
