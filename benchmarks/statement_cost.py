"""CPU per short transaction, by how it is written: the floor under a declaration's cost.

    .venv/bin/python benchmarks/statement_cost.py [--rounds 300] [--database postgresql]

In process, one at a time (no concurrency), on a migrated database in a temporary directory (or a
throwaway PostgreSQL server). Each form runs `rounds` times after 20 warm-up rounds; the figure is
the process's CPU time per round (user + system, the driver's threads included: aiosqlite runs each
call on a thread of its own), and next to it the event loop's share (this thread's CPU time) and
the rest (the driver's threads: none on PostgreSQL). It answers "what does one more transaction
cost", which is why a declaration is counted in transactions (tests/incidents/test_declaration_cost.py),
and how much of it the event loop pays. Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from _common import print_json, print_machine
from sqlalchemy import bindparam, select, text, update
from sqlmodel import col

from bot.config import Severity
from bot.db import Database
from bot.incidents import service, setup_rows
from bot.incidents.models import Incident, IncidentCreate
from bot.timeline import service as timeline
from bot.timeline.events import NoteAdded
from bot.timeline.models import TimelineEvent


def forms(db: Database, incident_id: int) -> dict[str, Callable[[], Awaitable[None]]]:
    now = datetime.now(UTC)
    table = Incident.metadata.tables["incidents"]
    prebuilt = update(table).where(table.c.id == bindparam("iid")).values(summary_ts=bindparam("ts"))

    async def connection_select_1() -> None:
        async with db.engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")

    async def session_select_1() -> None:
        async with db.session() as session:
            await session.exec(select(text("1")))

    async def orm_get() -> None:
        async with db.session() as session:
            await session.get(Incident, incident_id)

    async def core_select() -> None:
        async with db.engine.connect() as conn:
            (await conn.execute(select(table).where(table.c.id == incident_id))).first()

    async def orm_update_returning() -> None:  # the setup's writes (`setup_rows.record_setup`)
        async with db.session() as session:
            await setup_rows.record_setup(session, incident_id=incident_id, now=now, values={"summary_ts": "1.1"})

    returning = prebuilt.returning(*table.c)

    async def core_update_returning() -> None:  # the same as a Core statement, the Incident built from the row
        async with db.session() as session:
            row = (await session.exec(returning, params={"iid": incident_id, "ts": "1.2"})).one()
            await session.commit()
        Incident.model_validate(row._mapping)

    async def orm_update() -> None:
        async with db.session() as session:
            await session.exec(
                update(Incident)
                .where(col(Incident.id) == incident_id)
                .values(summary_ts="1.3")
                .execution_options(synchronize_session=False)
            )
            await session.commit()

    async def core_update_prebuilt() -> None:
        async with db.engine.begin() as conn:
            await conn.execute(prebuilt, {"iid": incident_id, "ts": "1.4"})

    async def orm_add_event() -> None:  # a timeline event as it was: an ORM object, flushed at the commit
        async with db.session() as session:
            session.add(TimelineEvent(incident_id=incident_id, at=now, kind="note", text="x", data={}))
            await session.commit()

    async def core_add_event() -> None:  # `timeline.add` now: a Core INSERT in the session's transaction
        async with db.session() as session:
            await timeline.add(session, incident_id=incident_id, at=now, text="x", payload=NoteAdded())
            await session.commit()

    return {
        "connection: SELECT 1": connection_select_1,
        "ORM session: SELECT 1": session_select_1,
        "ORM session: get(Incident)": orm_get,
        "Core connection: SELECT incident": core_select,
        "ORM session: UPDATE ... RETURNING Incident": orm_update_returning,
        "ORM session: prebuilt Core UPDATE ... RETURNING, Incident built": core_update_returning,
        "ORM session: UPDATE (no sync), commit": orm_update,
        "Core transaction: prebuilt UPDATE": core_update_prebuilt,
        "ORM session: add(TimelineEvent), commit": orm_add_event,
        "ORM session: timeline.add (Core INSERT), commit": core_add_event,
    }


async def measure(url: str, rounds: int, label: str) -> None:
    db = Database(url)
    await db.migrate()
    try:
        async with db.session() as session:
            data = IncidentCreate(title="Cost", severity=Severity.P3, declared_by="U0ALICE")
            incident = await service.create(session, data=data, now=datetime.now(UTC))
        assert incident.id is not None
        figures: dict[str, float] = {}
        loop_figures: dict[str, float] = {}
        for name, run in forms(db, incident.id).items():
            for _ in range(20):
                await run()
            started, loop_started = time.process_time(), time.thread_time()
            for _ in range(rounds):
                await run()
            figures[name] = (time.process_time() - started) / rounds * 1000
            loop_figures[name] = (time.thread_time() - loop_started) / rounds * 1000
            print(
                f"{label:10s} {name:62s} {figures[name]:5.2f} ms CPU per transaction "
                f"(event loop {loop_figures[name]:5.2f}, driver threads {figures[name] - loop_figures[name]:5.2f})"
            )
        print_json("statement_cost", {"database": label, **{k: round(v, 3) for k, v in figures.items()}})
        loop_rounded = {k: round(v, 3) for k, v in loop_figures.items()}
        print_json("statement_cost_event_loop", {"database": label, **loop_rounded})
    finally:
        await db.dispose()


async def main(rounds: int, database: str) -> None:
    print_machine()
    if database == "postgresql":
        from tests.pg import PostgresServer, create_database

        server = PostgresServer.start()
        try:
            await measure(server.url(create_database(server.admin_url)), rounds, "postgresql")
        finally:
            server.stop()
        return
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        await measure(f"sqlite+aiosqlite:///{tmp}/bot.db", rounds, "sqlite")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=300)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(main(args.rounds, args.database))
