"""How long building and rendering a post-mortem takes for an incident with 10,000 timeline events.

    .venv/bin/python benchmarks/postmortem_render.py [--events 10000] [--repeat 5]

Seeds a SQLite database in a temporary directory, then times `build` (three queries and the
one-pass computation) and `render` for Markdown and HTML. The first render includes compiling
the template; later ones use the cached environment. It prints figures and never asserts: the
target is at most 1 s for build + render.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.config import Severity
from bot.db import Database
from bot.incidents.models import ActionItem, Incident, Status
from bot.postmortem import service
from bot.timeline.models import TimelineEvent

T0 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
USERS = ["U0ALICE", "U0BOB", "U0CAROL", "U0DAVE", "U0ERIN"]


def _event(incident_id: int, i: int) -> dict[str, object]:
    """A realistic mix: mostly chat messages, some notes, pages, playbook steps, deploys, status updates."""
    at = T0 + timedelta(seconds=i * 3)
    actor = USERS[i % len(USERS)]
    row: dict[str, object] = {
        "incident_id": incident_id,
        "at": at,
        "actor": actor,
        "key": i % 97 == 0,
        "data": {},
        "text": f"message {i}: looked at dashboard_{i % 13} | p95 {(i * 7) % 900} ms <@U0BOB>",
        "kind": "message",
        "channel_id": "C0BENCH",
        "message_ts": f"{1763629200 + i}.{i:06d}",
        "permalink": f"https://example.slack.com/archives/C0BENCH/p{1763629200 + i}{i:06d}",
    }
    bucket = i % 50
    if 1 <= bucket <= 5:  # not a chat message: no Slack message behind it
        row.update(text="", channel_id=None, message_ts=None, permalink=None)
    if bucket == 1:
        row.update(kind="note", text=f"note {i}: *suspect* the cache")
    elif bucket == 2:
        row.update(
            kind="page",
            actor=None,
            data={"level": 1 + i % 3, "level_name": "On-call engineer", "targets": [USERS[i % 5]]},
        )
    elif bucket == 3:
        row.update(kind="playbook_step", data={"playbook": "service-down", "step_title": f"Step {i}", "status": "done"})
    elif bucket == 4:
        row.update(kind="deploy", data={"action": "restart", "service": "gateway", "outcome": "succeeded"})
    elif bucket == 5:
        row.update(
            kind="status",
            text=f"update {i}",
            data={"old": "investigating", "new": "identified" if i % 2 else "investigating"},
        )
    return row


async def seed(db: Database, events: int) -> int:
    async with db.session() as session:
        incident = Incident(
            title="Benchmark: everything is slow",
            severity=Severity.P1,
            service="gateway",
            declared_by="U0ALICE",
            commander="U0ALICE",
            status=Status.RESOLVED,
            declared_at=T0,
            acknowledged_at=T0 + timedelta(minutes=3),
            acknowledged_by="U0BOB",
            mitigated_at=T0 + timedelta(hours=6),
            resolved_at=T0 + timedelta(hours=9),
            resolved_by="U0ALICE",
            resolution="Scaled the cache cluster.",
        )
        session.add(incident)
        await session.flush()
        assert incident.id is not None
        number = incident.id
        session.add_all(
            ActionItem(
                incident_id=number,
                text=f"Follow-up {i}",
                owner=USERS[i % 5],
                created_by="U0ALICE",
                created_at=T0 + timedelta(hours=9, minutes=i),
            )
            for i in range(20)
        )
        await session.commit()
    # Bulk insert: the seeding is not what is measured.
    async with db.engine.begin() as conn:
        table = TimelineEvent.__table__  # type: ignore[attr-defined]
        rows = [_event(number, i) for i in range(events)]
        for start in range(0, len(rows), 2000):
            await conn.execute(table.insert(), rows[start : start + 2000])
    return number


async def main(events: int, repeat: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{Path(tmp) / 'bench.db'}")
        await db.migrate()
        started = time.perf_counter()
        number = await seed(db, events)
        print(f"seeded INC-{number} with {events} timeline events in {time.perf_counter() - started:.2f} s")

        builds: list[float] = []
        renders: dict[str, list[float]] = {"markdown": [], "html": []}
        sizes: dict[str, int] = {}
        data = None
        for _ in range(repeat):
            started = time.perf_counter()
            async with db.session() as session:
                data = await service.build(session, incident_id=number, now=T0 + timedelta(days=1))
            builds.append(time.perf_counter() - started)
            for fmt in renders:
                started = time.perf_counter()
                document = service.render(data, fmt=fmt)
                renders[fmt].append(time.perf_counter() - started)
                sizes[fmt] = len(document.encode())
        await db.dispose()

    assert data is not None
    print(
        f"build: first {builds[0] * 1000:.0f} ms, median {statistics.median(builds) * 1000:.0f} ms "
        f"({len(data.events)} events, {len(data.key_events)} key)"
    )
    for fmt, times in renders.items():
        print(
            f"render {fmt}: first {times[0] * 1000:.0f} ms (compiles the template), "
            f"median {statistics.median(times) * 1000:.0f} ms, {sizes[fmt] / 1024:.0f} KiB"
        )
    worst = max(statistics.median(builds) + statistics.median(t) for t in renders.values())
    print(f"build + render (median, slower format): {worst * 1000:.0f} ms; target <= 1000 ms")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    asyncio.run(main(args.events, max(1, args.repeat)))
    sys.exit(0)
