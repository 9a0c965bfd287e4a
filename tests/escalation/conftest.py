"""Fixtures for escalation tests without Slack: a FakeClock, an in-memory Pager, incidents in the DB."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import event

from bot.clock import FakeClock
from bot.config import BotConfig, Severity
from bot.db import Database
from bot.escalation.flows import Escalator
from bot.escalation.pages import queries
from bot.escalation.ports import PageMessage, PageReport, ReminderMessage
from bot.exceptions import ChatError
from bot.incidents import service as incidents
from bot.incidents import setup_rows
from bot.incidents.models import Incident, IncidentCreate
from bot.settings import normalise_database_url

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)

STANDARD: dict[str, Any] = {
    "oncall": {
        "timezone": "Europe/London",
        "rotation": {"period": "weekly", "handoff": "monday 09:00", "users": ["U0ALICE", "U0BOB", "U0CAROL"]},
    },
    "escalation": {
        "levels": [
            {"name": "On-call engineer", "after": "0m", "notify": ["oncall"]},
            {"name": "Team lead", "after": "15m", "notify": ["U0LEAD"]},
            {"name": "CTO", "after": "30m", "notify": ["U0CTO"]},
        ],
        "severity": {"P3": {"levels": 1}, "P4": {"levels": 1}},
    },
}


@dataclass
class FakePager:
    """Records what would reach people. Unknown users fail like Slack's `user_not_found`."""

    known_users: set[str] = field(default_factory=lambda: {"U0ALICE", "U0BOB", "U0CAROL", "U0LEAD", "U0CTO", "U0DAVE"})
    groups: dict[str, list[str]] = field(default_factory=dict)
    handles: dict[str, str] = field(default_factory=dict)
    dms: list[tuple[str, int, PageMessage]] = field(default_factory=list)  # (user, incident, page)
    reports: list[tuple[int, PageReport]] = field(default_factory=list)
    invites: list[tuple[str, list[str]]] = field(default_factory=list)
    reminders: list[tuple[int, ReminderMessage]] = field(default_factory=list)
    fail_reports: int = 0  # the next N channel reports fail
    fail_reminders: int = 0
    on_dm: Callable[[str], Any] | None = None  # hook run inside dm_page (to simulate a crash or a delay)
    on_report: Callable[[int], Any] | None = None  # hook run inside report_page, given the incident id

    async def dm_page(self, *, user: str, incident: Incident, page: PageMessage) -> None:
        if self.on_dm is not None:
            result = self.on_dm(user)
            if hasattr(result, "__await__"):
                await result
        if user not in self.known_users:
            raise ChatError(f"DM to {user} failed", step="page", code="user_not_found")
        assert incident.id is not None
        self.dms.append((user, incident.id, page))

    async def page_dm_posted(self, *, user: str, page: PageMessage, since: datetime) -> bool:
        return any(u == user and p.page_id == page.page_id for u, _, p in self.dms)

    async def report_page(self, *, incident: Incident, report: PageReport) -> None:
        if self.on_report is not None:
            assert incident.id is not None
            result = self.on_report(incident.id)
            if hasattr(result, "__await__"):
                await result
        if self.fail_reports:
            self.fail_reports -= 1
            raise ChatError("channel gone", step="page", code="channel_not_found")
        assert incident.id is not None
        self.reports.append((incident.id, report))

    async def page_report_posted(self, *, incident: Incident, page: PageMessage, since: datetime) -> bool:
        return any(i == incident.id and r.page.page_id == page.page_id for i, r in self.reports)

    async def invite(self, *, channel_id: str, users: list[str]) -> None:
        self.invites.append((channel_id, list(users)))

    async def group_members(self, *, group_id: str) -> list[str]:
        if group_id not in self.groups:
            raise ChatError("no such group", step="group", code="no_such_subteam")
        return list(self.groups[group_id])

    async def lookup_user(self, *, handle: str) -> str | None:
        return self.handles.get(handle.lstrip("@"))

    async def post_reminder(self, *, incident: Incident, reminder: ReminderMessage) -> None:
        if self.fail_reminders:
            self.fail_reminders -= 1
            raise ChatError("channel gone", step="reminder", code="channel_not_found")
        assert incident.id is not None
        self.reminders.append((incident.id, reminder))

    async def reminder_posted(self, *, incident: Incident, reminder: ReminderMessage, since: datetime) -> bool:
        return any(i == incident.id and r.reminder_id == reminder.reminder_id for i, r in self.reminders)

    # --- views for assertions ---------------------------------------------------------------

    def paged(self, incident_id: int | None = None) -> list[tuple[int, str]]:
        """(level, user) in the order the DMs went out."""
        return [(page.level, user) for user, inc, page in self.dms if incident_id in (None, inc)]

    def levels(self, incident_id: int | None = None) -> list[int]:
        return [report.page.level for inc, report in self.reports if incident_id in (None, inc)]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def pager() -> FakePager:
    return FakePager()


def config(**overrides: Any) -> BotConfig:
    raw: dict[str, Any] = {**STANDARD, **overrides}
    return BotConfig.model_validate(raw)


MakeEscalator = Callable[..., Escalator]
Start = Callable[..., Awaitable[tuple[Escalator, int]]]


@pytest.fixture
def make_escalator(db: Database, clock: FakeClock, pager: FakePager) -> MakeEscalator:
    def make(cfg: BotConfig | None = None, **kwargs: Any) -> Escalator:
        return Escalator(
            db=kwargs.pop("db", db),
            clock=kwargs.pop("clock", clock),
            pager=kwargs.pop("pager", pager),
            config=cfg or config(),
            **kwargs,
        )

    return make


@pytest.fixture
def start(db: Database, clock: FakeClock, make_escalator: MakeEscalator) -> Start:
    """`start(cfg, **escalator_kwargs)`: an escalator, and an incident declared and handed to it.

    The incident is made by `declare` (its keywords: severity, channel_id, declared_by, private) and handed over
    as `IncidentDeclared` does, so level 1 has gone out. Returns (escalator, incident id).
    """

    async def start(
        cfg: BotConfig | None = None,
        *,
        severity: str = "P1",
        channel_id: str | None = "C0INC1",
        declared_by: str = "U0ALICE",
        private: bool = False,
        **kwargs: Any,
    ) -> tuple[Escalator, int]:
        escalator = make_escalator(cfg, **kwargs)
        incident = await declare(
            db, clock, severity=severity, channel_id=channel_id, declared_by=declared_by, private=private
        )
        assert incident.id is not None
        await escalator.incident_declared(incident.id)
        return escalator, incident.id

    return start


@pytest.fixture
async def other_db(database_url: str, db: Database) -> AsyncIterator[Database]:
    """A second connection pool on the same database: another bot process, as far as rows go."""
    other = Database(normalise_database_url(database_url))
    await other.migrate()
    yield other
    await other.dispose()


async def declare(
    db: Database,
    clock: FakeClock,
    *,
    severity: str = "P1",
    title: str = "Checkout returns 500",
    channel_id: str | None = "C0INC1",
    declared_by: str = "U0ALICE",
    private: bool = False,
) -> Incident:
    """Store an incident the way the incidents domain does (before it publishes IncidentDeclared)."""
    async with db.session() as session:
        incident = await incidents.create(
            session,
            data=IncidentCreate(title=title, severity=Severity(severity), declared_by=declared_by, private=private),
            now=clock.now(),
        )
        if channel_id is not None:
            assert incident.id is not None
            incident = await setup_rows.set_channel(
                session,
                incident_id=incident.id,
                channel_id=channel_id,
                channel_name=f"inc-{incident.id}",
                now=clock.now(),
            )
        return incident


async def load(db: Database, incident_id: int) -> Incident:
    async with db.session() as session:
        incident = await session.get(Incident, incident_id)
        assert incident is not None
        return incident


async def acknowledge(db: Database, clock: FakeClock, incident_id: int, user: str) -> None:
    async with db.session() as session:
        incident = await incidents.get(session, number=incident_id)
        await incidents.acknowledge(session, incident=incident, actor=user, now=clock.now())


async def resolve(db: Database, clock: FakeClock, incident_id: int, user: str = "U0ALICE") -> None:
    async with db.session() as session:
        incident = await incidents.get(session, number=incident_id)
        await incidents.resolve(session, incident=incident, summary="fixed", actor=user, now=clock.now())


async def set_severity(db: Database, clock: FakeClock, incident_id: int, severity: str) -> None:
    async with db.session() as session:
        incident = await incidents.get(session, number=incident_id)
        await incidents.set_severity(
            session, incident=incident, severity=Severity(severity), actor="U0ALICE", now=clock.now()
        )


async def status_update(db: Database, clock: FakeClock, incident_id: int, status: str = "identified") -> None:
    from bot.incidents.models import Status

    async with db.session() as session:
        incident = await incidents.get(session, number=incident_id)
        await incidents.set_status(
            session, incident=incident, status=Status(status), message="update", actor="U0ALICE", now=clock.now()
        )


async def page_rows(db: Database, incident_id: int) -> list[tuple[int, int, bool, bool]]:
    """(level, repeat, sent, cancelled) per row."""
    async with db.session() as session:
        rows = await queries.pages(session, incident_id=incident_id)
    return [(r.level, r.repeat, r.sent_at is not None, r.cancelled_at is not None) for r in rows]


DUE_READ = "SELECT escalation_pages.due_at, escalation_pages.claim_expires_at"  # a sweep's `pages_free_by`


class Statements:
    """The statements the engine runs (and when), and the transactions it commits."""

    def __init__(self, db: Database) -> None:
        self.sql: list[str] = []
        self.times: list[datetime] = []  # wall clock, one per statement
        self.commits = 0
        self._waiting: dict[str, asyncio.Event] = {}
        self._engine = db.engine.sync_engine
        event.listen(self._engine, "before_cursor_execute", self._execute)
        event.listen(self._engine, "commit", self._commit)

    def _execute(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.sql.append(" ".join(statement.split()))
        self.times.append(datetime.now(UTC))
        for prefix, seen in self._waiting.items():
            if self.sql[-1].startswith(prefix):
                seen.set()

    async def seen(self, prefix: str) -> None:
        """Until a statement starting with `prefix` is sent (SQLAlchemy runs listeners on the loop's thread)."""
        if not self.count(prefix):
            await self._waiting.setdefault(prefix, asyncio.Event()).wait()

    def _commit(self, conn: Any) -> None:
        self.commits += 1

    def clear(self) -> None:
        self.sql.clear()
        self.times.clear()

    def count(self, prefix: str) -> int:
        return len(self.times_of(prefix))

    def times_of(self, prefix: str) -> list[datetime]:
        return [at for at, statement in zip(self.times, self.sql, strict=True) if statement.startswith(prefix)]

    def close(self) -> None:
        event.remove(self._engine, "before_cursor_execute", self._execute)
        event.remove(self._engine, "commit", self._commit)


@pytest.fixture
def statements(db: Database) -> Iterator[Statements]:
    counter = Statements(db)
    yield counter
    counter.close()
