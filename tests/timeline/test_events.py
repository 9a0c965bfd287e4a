"""Typed timeline payloads: each kind written and read through one type, and old rows still read."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError
from sqlmodel.ext.asyncio.session import AsyncSession

from bot.config import Severity
from bot.db import Database
from bot.incidents.models import Incident
from bot.timeline import events
from bot.timeline import service as timeline
from bot.timeline.models import Kind, TimelineEvent

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

# One filled-in payload per kind: what today's writers store.
EXAMPLES: list[events.Payload] = [
    events.Declared(severity="P1", service="gateway", playbook="service-down"),
    events.StatusChanged(old="investigating", new="identified"),
    events.SeverityChanged(old="P2", new="P1"),
    events.RoleAssigned(role="commander", user="U0CAROL", previous="U0ALICE"),
    events.Acknowledged(first=False, for_whom=["U0BOB"]),
    events.Resolved(),
    events.NoteAdded(),
    events.MessagePosted(),
    events.ActionItemChanged(item_id=3, issue_url="https://tracker.example/ISS-1", issue_key="ISS-1", via="dashboard"),
    events.FollowupStatus(item_id=3, done=True, via="slack"),
    events.ChatError(step="pinning the summary", code="not_in_channel"),
    events.Setup(step="adopt channel", channel_id="C0INC7", ts="1763629560.000100", problems=["pins.add failed"]),
    events.UnfinishedWork(signal="resolved", failed=["share the post-mortem draft"], attempt=2, retry_at=T0),
    events.Impact(impact_started_at=T0, previous=datetime(2026, 11, 20, 9, 5, tzinfo=UTC)),
    events.PageEvent(
        page_id=4,
        level=2,
        name="Team lead",
        repeat=1,
        sent_to=["U0LEAD"],
        failed={"U0GONE": "user_not_found"},
        late=True,
        late_seconds=130.2,
        errors=["invite failed"],
        via=["PagerDuty"],
    ),
    events.ReminderSent(reminder_id=9, kind="status_update", seq=2, sent_to=["C0INC7"], late=False, late_seconds=0.4),
    events.PlaybookChanged(status="started", run_id=1, playbook_id="db", title="Database", reason="r", steps=4),
    events.PlaybookStepChanged(
        status="status failed", run_id=1, playbook_id="db", step_id="s1", step_title="Check", action="status", ok=False
    ),
    events.HealthChecked(
        results=[
            events.HealthCheck(service="api", state="failing", http_status=503, latency_ms=12.5, failing=["database"])
        ],
        overall="failing",
    ),
    events.Deployed(
        action="rollback",
        service="api",
        outcome="succeeded",
        platform="railway",
        from_deployment="dep-42",
        to="dep-41",
        deployment="dep-43",
        durations={"deploy": 40.1},
    ),
    events.AlertChanged(
        source="alertmanager", group_id=5, how="auto", labels={"alertname": "Down"}, impact_started_at=T0
    ),
    events.PostmortemEvent(
        file_id="F1", filename="INC-7-postmortem.md", format="markdown", bytes=10, trigger="command"
    ),
    events.PublicUpdatePublished(
        update_id=2, title="API down", status="investigating", impact="major", components=["api"]
    ),
    events.StatuspageSyncEvent(update_id=2, status=503),
]


def test_every_kind_has_exactly_one_payload_type_and_an_example() -> None:
    assert set(events.PAYLOADS) == {str(kind) for kind in Kind}
    assert sorted(str(p.KIND) for p in EXAMPLES) == sorted(events.PAYLOADS)


def test_a_second_payload_type_for_a_kind_is_refused_and_the_first_kept() -> None:
    with pytest.raises(TypeError, match="two payload types for the timeline kind"):

        class AnotherSeverityChanged(events.Payload):
            KIND = Kind.SEVERITY

    assert events.payload_type(Kind.SEVERITY) is events.SeverityChanged


@pytest.mark.parametrize("payload", EXAMPLES, ids=lambda p: str(p.KIND))
def test_a_payload_survives_the_json_it_is_stored_as(payload: events.Payload) -> None:
    assert events.parse(payload.KIND, payload.to_data()) == payload


async def test_written_and_read_through_the_database(db: Database) -> None:
    async with db.session() as session:
        incident_id = await _an_incident(session)
        for payload in EXAMPLES:
            await timeline.add(session, incident_id=incident_id, at=T0, text="t", payload=payload)
        await session.commit()
    async with db.session() as session:
        stored = await timeline.events(session, incident_id=incident_id)
    assert [e.kind for e in stored] == [str(p.KIND) for p in EXAMPLES]
    assert [events.read(e) for e in stored] == EXAMPLES
    deploy = next(e for e in stored if e.kind == Kind.DEPLOY)
    assert deploy.data["from"] == "dep-42" and "from_deployment" not in deploy.data  # the key rows always had
    assert events.read_as(deploy, events.Deployed).to == "dep-41"


def test_optional_fields_left_unset_are_not_stored() -> None:
    """The stored dicts are the ones the writers wrote before the types: readers test `"seq" in data`."""
    assert events.PostmortemEvent(finished=True).to_data() == {"finished": True}
    assert events.Acknowledged(first=True).to_data() == {"first": True}
    assert events.Acknowledged(first=False, for_whom=["U0BOB"]).to_data() == {"first": False, "for": ["U0BOB"]}
    assert events.Resolved().to_data() == {}
    assert events.FollowupStatus(item_id=1, done=False).to_data() == {"item_id": 1, "done": False}
    assert events.PlaybookStepChanged(status="done", reason="").to_data() == {"status": "done", "reason": ""}


# Rows as the writers stored them before the types existed (and as bot/escalation still writes them).
OLD_ROWS: list[tuple[str, dict[str, object], events.Payload]] = [
    ("declared", {"severity": "P2", "service": None, "playbook": None}, events.Declared(severity="P2")),
    ("declared", {"severity": "P2", "service": "gateway"}, events.Declared(severity="P2", service="gateway")),
    ("role", {"role": "scribe", "user": "U0DAVE", "previous": None}, events.RoleAssigned(role="scribe", user="U0DAVE")),
    ("ack", {"first": True}, events.Acknowledged()),
    ("ack", {}, events.Acknowledged(first=True)),
    ("action_item", {"owner": None}, events.ActionItemChanged()),
    ("action_item_status", {"item_id": 2, "done": True, "via": None}, events.FollowupStatus(item_id=2, done=True)),
    (
        "impact",
        {"impact_started_at": "2026-11-20T09:00:00+00:00", "previous": "2026-11-20T09:05:00+00:00"},
        events.Impact(impact_started_at=T0, previous=datetime(2026, 11, 20, 9, 5, tzinfo=UTC)),
    ),
    ("health", {"service": "gateway"}, events.HealthChecked(service="gateway")),
    (
        "postmortem",
        {"finished": False, "file_id": "F1", "unknown_later_key": [1, 2]},
        events.PostmortemEvent(file_id="F1"),
    ),
    (
        "deploy",
        {"action": "restart", "service": "api", "outcome": "started", "platform": "railway", "from": None, "to": None},
        events.Deployed(action="restart", service="api", outcome="started", platform="railway"),
    ),
    # bot/escalation/service.py: a page sent, pages cancelled, the plan re-planned, a reminder.
    (
        "page",
        {
            "action": "sent",
            "page_id": 1,
            "level": 1,
            "name": "On-call",
            "repeat": 0,
            "sent_to": ["U0BOB"],
            "failed": {},
            "late": False,
            "late_seconds": 0.012,
            "errors": [],
            "via": [],
        },
        events.PageEvent(
            page_id=1,
            level=1,
            name="On-call",
            repeat=0,
            sent_to=["U0BOB"],
            failed={},
            late=False,
            late_seconds=0.012,
            errors=[],
            via=[],
        ),
    ),
    (
        "page",
        {"action": "cancelled", "levels": [2, 3], "reason": "resolved"},
        events.PageEvent(action="cancelled", levels=[2, 3], reason="resolved"),
    ),
    (
        "page",
        {"action": "replanned", "added": [3], "restored": []},
        events.PageEvent(action="replanned", added=[3], restored=[]),
    ),
    (
        "reminder",
        {"reminder_id": 4, "kind": "postmortem", "seq": 0, "sent_to": [], "late": True, "late_seconds": 61.0},
        events.ReminderSent(reminder_id=4, kind="postmortem", seq=0, sent_to=[], late=True, late_seconds=61.0),
    ),
]


@pytest.mark.parametrize(
    ("kind", "data", "expected"), OLD_ROWS, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(OLD_ROWS)]
)
def test_rows_stored_before_the_types_still_parse(kind: str, data: dict[str, object], expected: events.Payload) -> None:
    assert events.parse(kind, data) == expected


async def test_an_old_row_in_the_database_reads_as_its_type(db: Database) -> None:
    async with db.session() as session:
        incident_id = await _an_incident(session)
        old = {"old": "investigating", "new": "monitoring", "written_by": "an older release"}
        session.add(TimelineEvent(incident_id=incident_id, at=T0, kind="status", text="", data=old))
        await session.commit()
        [event] = await timeline.events(session, incident_id=incident_id)
    assert events.read_as(event, events.StatusChanged) == events.StatusChanged(old="investigating", new="monitoring")


def test_a_payload_of_another_kind_is_refused() -> None:
    event = TimelineEvent(incident_id=1, at=T0, kind="severity", data={"old": "P2", "new": "P1"})
    with pytest.raises(TypeError, match="no StatusChanged payload"):
        events.read_as(event, events.StatusChanged)
    with pytest.raises(events.UnknownKind):
        events.parse("no_such_kind", {})
    with pytest.raises(ValidationError):
        events.parse("severity", {"old": "P2"})  # `new` is what a severity change is about
    with pytest.raises(ValidationError):
        events.SeverityChanged(old="P2")  # type: ignore[call-arg]  # a writer cannot leave it out either


async def test_the_kind_of_an_event_is_its_payload_s(db: Database) -> None:
    async with db.session() as session:
        incident_id = await _an_incident(session)
        await timeline.add(session, incident_id=incident_id, at=T0, payload=events.NoteAdded(), text="n")
        await session.commit()
        [event] = await timeline.events(session, incident_id=incident_id)
    assert (event.kind, event.data, event.text) == ("note", {}, "n")


def test_odd_data_is_shown_by_its_text_not_a_failure() -> None:
    assert events.read_data("page", {"level": "one"}) is None
    assert events.read_data("some_future_kind", {"x": 1}) is None


async def _an_incident(session: AsyncSession) -> int:
    """An incident for events to belong to (the timeline's foreign key); its id."""
    incident = Incident(title="x", severity=Severity.P2, declared_by="U0ALICE", declared_at=T0)
    session.add(incident)
    await session.flush()
    assert incident.id is not None
    return incident.id
