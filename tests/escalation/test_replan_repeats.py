"""A severity change that makes an already-paged level the last one again goes on repeating it, every
`repeat_last_every` from the change: the change itself pages nobody (the on-call engineer who lowers a P1
to a P3 at 3 a.m. is not paged for doing so)."""

from __future__ import annotations

from datetime import timedelta

from bot.clock import FakeClock
from bot.db import Database
from bot.timeline import service as timeline
from tests.escalation.conftest import STANDARD, FakePager, Start, config, page_rows, resolve, set_severity

REPEAT = config(escalation={**STANDARD["escalation"], "repeat_last_every": "10m"})


def paged(pager: FakePager) -> list[tuple[str, int, int]]:
    return [(user, page.level, page.repeat) for user, _, page in pager.dms]


async def test_lowering_a_p1_to_a_p3_repeats_level_1_an_interval_after_the_change_not_at_once(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(REPEAT)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert paged(pager) == [("U0ALICE", 1, 0), ("U0LEAD", 2, 0), ("U0CTO", 3, 0)]
    clock.advance(timedelta(minutes=5))  # 35 minutes in: level 1 went out 35 minutes ago
    await set_severity(db, clock, incident_id, "P3")
    await escalator.severity_changed(incident_id)
    await escalator.run_due()
    assert paged(pager)[3:] == []
    assert (3, 1, False, True) in await page_rows(db, incident_id)  # the CTO's repeat is cancelled
    clock.advance(timedelta(minutes=9))
    await escalator.run_due()
    assert paged(pager)[3:] == []
    clock.advance(timedelta(minutes=1))  # 10 minutes after the change
    await escalator.run_due()
    assert paged(pager)[3:] == [("U0ALICE", 1, 1)]
    clock.advance(timedelta(minutes=10))
    await escalator.run_due()
    assert paged(pager)[3:] == [("U0ALICE", 1, 1), ("U0ALICE", 1, 2)]


async def test_a_level_made_last_again_soon_after_it_repeated_keeps_its_rhythm(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    escalator, incident_id = await start(REPEAT, severity="P3")
    clock.advance(timedelta(minutes=10))
    await escalator.run_due()
    assert paged(pager) == [("U0ALICE", 1, 0), ("U0ALICE", 1, 1)]
    clock.advance(timedelta(minutes=2))
    await set_severity(db, clock, incident_id, "P1")
    await escalator.severity_changed(incident_id)
    clock.advance(timedelta(minutes=1))
    await set_severity(db, clock, incident_id, "P3")
    await escalator.severity_changed(incident_id)
    clock.advance(timedelta(minutes=6))  # 19 minutes in
    await escalator.run_due()
    assert paged(pager)[2:] == []
    clock.advance(timedelta(minutes=1))  # 20: ten minutes after the last repeat
    await escalator.run_due()
    assert paged(pager)[2:] == [("U0ALICE", 1, 3)]


async def test_a_last_level_sent_while_the_incident_was_resolved_plans_no_repeat(
    db: Database, clock: FakeClock, pager: FakePager, start: Start
) -> None:
    """The resolve lands (and its handler cancels what is pending) while the CTO's DM goes out: the page is
    recorded as sent, and nothing follows it: no repeat for a resolved incident, and the resolve's "stopped" is
    the only one (a repeat planned after it used to be cancelled at its due time, "stopped" a second time)."""
    escalator, incident_id = await start(REPEAT)
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()

    async def resolved_meanwhile(user: str) -> None:
        if user == "U0CTO":
            pager.on_dm = None
            await resolve(db, clock, incident_id)
            await escalator.incident_resolved(incident_id)

    pager.on_dm = resolved_meanwhile
    clock.advance(timedelta(minutes=15))
    await escalator.run_due()
    assert paged(pager)[2:] == [("U0CTO", 3, 0)]
    assert [row for row in await page_rows(db, incident_id) if row[:2] == (3, 1)] == []
    clock.advance(timedelta(hours=1))
    await escalator.run_due()
    assert paged(pager)[3:] == []
    async with db.session() as session:
        said = [e.text for e in await timeline.events(session, incident_id=incident_id, kinds=["page"])]
    assert [text for text in said if text.startswith("Escalation stopped")] == ["Escalation stopped: incident resolved"]
