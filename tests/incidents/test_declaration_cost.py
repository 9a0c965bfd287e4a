"""What one declaration costs the database: statements and transactions, on both engines.

benchmarks/ack_latency.py measures the CPU; this pins the work behind it, so a change that adds a
read-back or splits a transaction fails here with the statements listed, not months later as a
slower storm. The figures are what a declaration does today (see benchmarks/README.md); lower them
when you remove work.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from tests.harness import BotHarness

# One `/incident declare P3 …` with the default bot.yml (nobody to page) and a matching playbook:
# the row with the request's replay claim (one transaction: `replay.CarriedClaim`), the channel, the
# summary and the announcement with the lease's release (one UPDATE), the pages' catch-up, the
# playbook's start and its progress message, and the note that this channel-ready work is done
# (without it, a crash before the work would lose it). A P3 with nobody to page has nothing for the
# pager to plan, so it reads nothing (tests/escalation/test_declared_planning.py).
MAX_STATEMENTS = 14
MAX_TRANSACTIONS = 7


@contextmanager
def recorded(*engines: Engine) -> Iterator[list[str]]:
    log: list[str] = []

    def statement(_conn: Any, _cursor: Any, sql: str, *_args: Any) -> None:
        log.append(" ".join(sql.split())[:100])

    def begin(_conn: Any) -> None:
        log.append("BEGIN")

    hooks: list[tuple[str, Callable[..., None]]] = [("before_cursor_execute", statement), ("begin", begin)]
    for engine in engines:
        for name, hook in hooks:
            event.listen(engine, name, hook)
    try:
        yield log
    finally:
        for engine in engines:
            for name, hook in hooks:
                event.remove(engine, name, hook)


async def test_a_declaration_stays_within_its_statements_and_transactions(bot: BotHarness) -> None:
    await bot.command("declare P3 Warm-up checkout latency")  # first-use work (caches, the playbooks) is not counted
    db = bot.deps.db
    flushes: list[int] = []

    def flushed(session: Session, _context: Any, _instances: Any) -> None:
        flushes.append(len(session.new) + len(session.dirty))

    event.listen(Session, "before_flush", flushed)
    try:
        with recorded(db.engine.sync_engine, db.for_pager().engine.sync_engine) as log:
            await bot.command("declare P3 Checkout latency")
            await bot.settle()
    finally:
        event.remove(Session, "before_flush", flushed)
    statements = [line for line in log if line != "BEGIN"]
    transactions = log.count("BEGIN")
    listing = "\n".join(log)
    assert len(statements) <= MAX_STATEMENTS, f"{len(statements)} statements:\n{listing}"
    assert transactions <= MAX_TRANSACTIONS, f"{transactions} transactions:\n{listing}"
    # Its writes are Core statements: an ORM object flushed on this path costs a unit of work
    # (~1 ms) for what one prebuilt INSERT or UPDATE does (benchmarks/statement_cost.py).
    assert flushes == [], f"{len(flushes)} ORM flushes in a declaration"
    # It did the whole declaration (a test that counts nothing would pass the limits too).
    assert any(s.startswith("INSERT INTO incidents") for s in statements)
    # The replay claim is written in the declaration's transaction, before its row (no number used up by a replay).
    row = log.index(next(s for s in log if s.startswith("INSERT INTO incidents")))
    assert log[row - 2] == "BEGIN" and log[row - 1].startswith("INSERT INTO processed_requests"), listing
    assert any(s.startswith("INSERT INTO playbook_step_states") for s in statements)
    assert any("progress_ts" in s and s.startswith("UPDATE playbook_runs") for s in statements)
    incident = await bot.incident(2)
    assert incident.channel_id and incident.summary_ts and incident.announcement_ts and incident.playbook_id
    assert incident.setup_claimed_at is None  # the lease went with the announcement's record
