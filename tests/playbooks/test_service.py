"""Playbook runs in the database, without Slack: start, switch, steps, races, actions, progress."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.config import Severity
from bot.db import Database
from bot.exceptions import InvalidState, NotFound, PermissionDenied
from bot.incidents import service as incidents
from bot.incidents.models import Incident, IncidentCreate, Role
from bot.playbooks import checklist, runs, steps
from bot.playbooks.loader import load_playbooks
from bot.playbooks.models import PlaybookRun, StepStatus
from bot.playbooks.registry import PlaybookRegistry
from bot.playbooks.schema import Action
from bot.timeline import service as timeline

SHIPPED = Path(__file__).resolve().parents[2] / "playbooks"
T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def registry() -> PlaybookRegistry:
    return load_playbooks(SHIPPED)


async def declare(db: Database, title: str = "Checkout API down", *, service_name: str | None = "gateway") -> Incident:
    async with db.session() as session:
        return await incidents.create(
            session,
            data=IncidentCreate(title=title, severity=Severity.P1, service=service_name, declared_by="U0ALICE"),
            now=T0,
        )


async def start(db: Database, incident: Incident, registry: PlaybookRegistry, playbook_id: str) -> PlaybookRun:
    async with db.session() as session:
        previous = await runs.current_run(session, incident_id=incident.id or 0)
        return await runs.start(
            session,
            incident=incident,
            previous=previous,
            playbook=registry.get(playbook_id),
            actor="U0ALICE",
            now=T0,
            reason="test",
        )


async def events(db: Database, incident_id: int, *kinds: str) -> list[timeline.TimelineEvent]:
    async with db.session() as session:
        return await timeline.events(session, incident_id=incident_id, kinds=list(kinds) or None)


async def test_start_creates_pending_steps_and_a_timeline_event(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    run = await start(db, incident, registry, "service-down")
    async with db.session() as session:
        states = await runs.step_states(session, run_id=run.id or 0)
        stored = await incidents.get(session, number=incident.id or 0)
    assert [s.step_id for s in states] == [s.id for s in registry.get("service-down").steps]
    assert {s.state for s in states} == {StepStatus.PENDING}
    assert stored.playbook_id == "service-down"
    [event] = await events(db, incident.id or 0, "playbook")
    assert event.actor == "U0ALICE" and event.text == "Started playbook Service down (test)"
    assert event.data["status"] == "started" and event.data["playbook_id"] == "service-down"


async def test_starting_the_same_playbook_twice_is_refused(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    await start(db, incident, registry, "service-down")
    with pytest.raises(InvalidState, match="already running"):
        await start(db, incident, registry, "service-down")


async def test_switching_closes_the_old_run_with_a_note(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    old = await start(db, incident, registry, "service-down")
    new = await start(db, incident, registry, "database")
    async with db.session() as session:
        current = await runs.current_run(session, incident_id=incident.id or 0)
        old_now = await runs.get_run(session, run_id=old.id or 0)
        all_runs = await runs.runs(session, incident_id=incident.id or 0)
    assert current is not None and current.id == new.id and current.playbook_id == "database"
    assert old_now.current is None and old_now.finished_reason == "switched" and old_now.finished_at == T0
    assert [r.playbook_id for r in all_runs] == ["service-down", "database"]
    texts = [e.text for e in await events(db, incident.id or 0, "playbook")]
    assert texts == [
        "Started playbook Service down (test)",
        "Switched playbook from Service down to Database issues",
        "Started playbook Database issues (test)",
    ]
    # Buttons on the old progress message no longer change anything.
    async with db.session() as session:
        with pytest.raises(InvalidState, match="replaced"):
            await steps.complete_step(session, run_id=old.id or 0, step_id="logs", actor="U0BOB", now=T0)


async def test_complete_and_skip_are_recorded_once_with_who(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    run = await start(db, incident, registry, "service-down")
    later = T0 + timedelta(minutes=3)
    rid = run.id or 0
    async with db.session() as session:
        first = await steps.complete_step(session, run_id=rid, step_id="check-health", actor="U0BOB", now=later)
    async with db.session() as session:
        again = await steps.complete_step(session, run_id=rid, step_id="check-health", actor="U0CAROL", now=later)
    async with db.session() as session:
        skip_done = await steps.skip_step(session, run_id=rid, step_id="check-health", actor="U0CAROL", now=later)
        skipped = await steps.skip_step(
            session, run_id=run.id or 0, step_id="recent-deploys", actor="U0CAROL", now=later, reason="no deploy today"
        )
    assert first.recorded and first.state == StepStatus.DONE and first.by == "U0BOB"
    assert not again.recorded and again.by == "U0BOB" and again.state == StepStatus.DONE
    assert again.step_title == "Check the health endpoints"  # what the losing click is told about
    assert not skip_done.recorded
    assert skipped.recorded and skipped.state == StepStatus.SKIPPED
    step_events = await events(db, incident.id or 0, "playbook_step")
    assert [(e.actor, e.data["status"], e.data["step_id"]) for e in step_events] == [
        ("U0BOB", "done", "check-health"),
        ("U0CAROL", "skipped", "recent-deploys"),
    ]
    assert step_events[0].at == later
    assert step_events[1].text.endswith("Look at what changed (a required step): no deploy today")


async def test_two_people_clicking_the_same_step_at_once_record_it_once(
    db: Database, registry: PlaybookRegistry
) -> None:
    incident = await declare(db)
    run = await start(db, incident, registry, "service-down")

    async def click(user: str, step_id: str) -> steps.StepChange:
        async with db.session() as session:
            return await steps.complete_step(session, run_id=run.id or 0, step_id=step_id, actor=user, now=T0)

    for step_id in ("check-health", "recent-deploys", "logs"):
        results = await asyncio.gather(*(click(user, step_id) for user in ("U0BOB", "U0CAROL", "U0LEAD")))
        winners = [r for r in results if r.recorded]
        assert len(winners) == 1, step_id
        # The others are told who was first.
        assert all(r.by == winners[0].by and r.state == StepStatus.DONE for r in results)
        logged = [e for e in await events(db, incident.id or 0, "playbook_step") if e.data["step_id"] == step_id]
        assert len(logged) == 1 and logged[0].actor == winners[0].by


async def test_finishing_the_required_steps_completes_the_run(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    run = await start(db, incident, registry, "service-down")
    playbook = registry.get("service-down")
    finished = []
    for step in playbook.steps:
        if not step.required:
            continue
        async with db.session() as session:
            change = await steps.complete_step(session, run_id=run.id or 0, step_id=step.id, actor="U0BOB", now=T0)
        finished.append(change.finished)
    assert finished == [False] * (len(finished) - 1) + [True]
    async with db.session() as session:
        done_run = await runs.get_run(session, run_id=run.id or 0)
        progress = await checklist.progress(session, run_id=done_run.id or 0)
    assert done_run.finished_reason == "completed" and done_run.current is True
    assert progress.finished
    # Optional steps stay open and can still be done.
    assert progress.next is not None and progress.next.id == "restart" and not progress.next.required
    [last] = (await events(db, incident.id or 0, "playbook"))[-1:]
    assert last.text == f"Finished playbook Service down: {playbook.required_steps} done, 0 skipped"


async def test_action_results_are_kept_with_their_output(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    run = await start(db, incident, registry, "service-down")
    async with db.session() as session:
        state = await steps.record_action_result(
            session,
            run_id=run.id or 0,
            step_id="check-health",
            action=Action.STATUS,
            actor="U0BOB",
            ok=False,
            output="gateway: failing (HTTP 503, database down) 120 ms\n" + "x" * 5000,
            now=T0,
        )
    assert state.action_ok is False and state.action_by == "U0BOB"
    assert state.action_output is not None and len(state.action_output) <= steps.OUTPUT_LIMIT
    assert state.action_output.endswith("(truncated)")
    [event] = await events(db, incident.id or 0, "playbook_step")
    assert event.actor == "U0BOB" and event.data["status"] == "status failed"
    assert event.data["output"].startswith("gateway: failing (HTTP 503, database down)")
    # The step itself is still pending: a check is not the decision that the step is done.
    async with db.session() as session:
        progress = await checklist.progress(session, run_id=run.id or 0)
    assert progress.steps[0].state == StepStatus.PENDING and progress.steps[0].action_ok is False


async def test_progress_renders_the_next_step_for_this_incident(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db, "Gateway down")
    run = await start(db, incident, registry, "service-down")
    async with db.session() as session:
        progress = await checklist.progress(session, run_id=run.id or 0)
    assert progress.checklist()[:2] == ["⬜ 1. Check the health endpoints", "⬜ 2. Look at what changed"]
    assert progress.next is not None and progress.next.id == "check-health"
    assert progress.next.action == Action.STATUS and progress.next.action_label == "Check health"
    assert progress.next.service == "gateway"
    assert "{{" not in progress.next.instructions and "SERVICE" not in progress.next.instructions
    async with db.session() as session:
        await steps.complete_step(session, run_id=run.id or 0, step_id="check-health", actor="U0BOB", now=T0)
    async with db.session() as session:
        await steps.skip_step(session, run_id=run.id or 0, step_id="recent-deploys", actor="U0BOB", now=T0)
    async with db.session() as session:
        progress = await checklist.progress(session, run_id=run.id or 0)
    assert progress.checklist()[:4] == [
        "✅ 1. Check the health endpoints",
        "⏭ 2. Look at what changed",
        "⬜ 3. Read the logs",
        "⬜ 4. Restart the service (optional)",
    ]
    assert (progress.done, progress.skipped, progress.pending, progress.total) == (1, 1, 4, 6)
    assert progress.next is not None and progress.next.id == "logs"
    assert "railway logs --service gateway" in progress.next.instructions
    assert not progress.finished


async def test_restricted_playbook_only_the_lead_works_it(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db, "Leaked credentials", service_name=None)  # commander: the declarer, U0ALICE
    run = await start(db, incident, registry, "security-breach")
    async with db.session() as session:
        with pytest.raises(PermissionDenied, match="Only the incident's commander"):
            await steps.complete_step(session, run_id=run.id or 0, step_id="contain", actor="U0BOB", now=T0)
    async with db.session() as session:
        change = await steps.complete_step(session, run_id=run.id or 0, step_id="contain", actor="U0ALICE", now=T0)
        progress = await checklist.progress(session, run_id=run.id or 0)
    assert change.recorded
    assert progress.private and progress.restricted_note and "Incident lead only" in progress.restricted_note
    # A new commander takes over the playbook.
    async with db.session() as session:
        current = await incidents.get(session, number=incident.id or 0)
        await incidents.assign_role(
            session, incident=current, role=Role.COMMANDER, user="U0BOB", actor="U0ALICE", now=T0
        )
    async with db.session() as session:
        change = await steps.complete_step(session, run_id=run.id or 0, step_id="escalate", actor="U0BOB", now=T0)
    assert change.recorded


async def test_unknown_step_and_run(db: Database, registry: PlaybookRegistry) -> None:
    incident = await declare(db)
    run = await start(db, incident, registry, "service-down")
    async with db.session() as session:
        with pytest.raises(NotFound, match="has no step 'nope'"):
            await steps.complete_step(session, run_id=run.id or 0, step_id="nope", actor="U0BOB", now=T0)
        with pytest.raises(NotFound):
            await steps.complete_step(session, run_id=9999, step_id="logs", actor="U0BOB", now=T0)
