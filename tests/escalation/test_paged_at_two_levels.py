"""The same person at two levels (the on-call engineer is the team lead too): a note at the later level,
not a second page as if they were new to the incident; the escalation keeps going on its timers."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.escalation.oncall import on_call_at
from tests.escalation.conftest import FakePager, MakeEscalator, config, declare, page_rows


async def test_a_person_already_paged_gets_a_note_at_the_next_level_and_the_next_level_still_fires(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    oncall = on_call_at(config().oncall, clock.now())
    assert oncall is not None
    levels = [
        {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
        {"name": "Team lead", "after": "15m", "notify": [oncall]},
        {"name": "Leads", "after": "30m", "notify": [oncall, "U0LEAD"]},
        {"name": "CTO", "after": "45m", "notify": ["U0CTO"]},
    ]
    escalator = make_escalator(config(escalation={"levels": levels}))
    incident = await declare(db, clock, declared_by="U0DAVE")
    assert incident.id is not None
    await escalator.incident_declared(incident.id)
    for _ in range(3):
        clock.advance(timedelta(minutes=15))
        await escalator.run_due()
    assert [(page.level, user, page.paged_at_level) for user, _, page in pager.dms] == [
        (1, oncall, None),
        (2, oncall, 1),  # a note: the incident reached the level they are also
        (3, oncall, 1),
        (3, "U0LEAD", None),  # new to it: paged
        (4, "U0CTO", None),
    ]
    assert await page_rows(db, incident.id) == [(n, 0, True, False) for n in (1, 2, 3, 4)]


async def test_a_repeat_of_the_last_level_is_a_page_again(
    db: Database, clock: FakeClock, pager: FakePager, make_escalator: MakeEscalator
) -> None:
    """A repeat is the reminder the config asked for, to the same people on purpose: it stays a page."""
    oncall = on_call_at(config().oncall, clock.now())
    assert oncall is not None
    levels = [
        {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
        {"name": "Team lead", "after": "15m", "notify": [oncall]},
    ]
    escalator = make_escalator(config(escalation={"levels": levels, "repeat_last_every": "10m"}))
    incident = await declare(db, clock, declared_by="U0DAVE")
    assert incident.id is not None
    await escalator.incident_declared(incident.id)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    clock.advance(timedelta(minutes=10))
    await escalator.run_due()
    assert [(page.level, page.repeat, page.paged_at_level) for _, _, page in pager.dms] == [
        (1, 0, None),
        (2, 0, 1),
        (2, 1, None),
    ]
