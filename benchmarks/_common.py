"""Shared by the benchmarks: a seeded fake Slack, the real bot as a subprocess, signed requests, figures.

Not a benchmark itself (the leading underscore keeps it out of the README table).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import platform
import re
import statistics
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from tests import slack_requests as req  # noqa: E402
from tests.fakes.slack_api import FakeSlack  # noqa: E402
from tests.harness import SECRET  # noqa: E402
from tests.replicas import process  # noqa: E402


@contextlib.contextmanager
def database_url_for(database: str) -> Iterator[str | None]:
    """The bot's DATABASE_URL: None for SQLite (the bot's temporary directory), else a throwaway
    PostgreSQL server started as the tests start it (fsync and synchronous_commit off), stopped after."""
    print(
        f"database: {database}"
        + (" (the server's own CPU is not in the bot's figures)" if database != "sqlite" else "")
    )
    if database == "sqlite":
        yield None
        return
    from tests.pg import PostgresServer, create_database

    server = PostgresServer.start()
    try:
        yield server.url(create_database(server.admin_url))
    finally:
        server.stop()


USERS = {"U0ALICE": "alice", "U0BOB": "bob", "U0CAROL": "carol", "U0LEAD": "lead", "U0CTO": "cto"}
BOT_YML = "channels: {announcements: C0INCIDENTS, alerts: C0ALERTS}\n"
UNPACED_MAIN = (
    "import sys\n"
    "from bot.slack.adapters import incidents\n"
    "incidents.SlackIncidentChat.CREATE_LIMIT = 10**6\n"
    "from bot.__main__ import main\n"
    "sys.exit(main([]))\n"
)


async def seeded_fake(cls: type[FakeSlack] = FakeSlack) -> FakeSlack:
    fake = cls()
    await fake.start()
    for user_id, name in USERS.items():
        fake.add_user(user_id, name)
    for name, channel_id in (("general", "C0GENERAL"), ("incidents", "C0INCIDENTS"), ("alerts", "C0ALERTS")):
        fake.add_channel(name, channel_id=channel_id, members=list(USERS))
    return fake


class BotProcess(process.BotProcess):
    """`python -m bot` in HTTP mode, as deployed (tests/replicas/process.py), in its own temporary folder.

    `unpaced`: lift the adapter's conversations.create pacing (20/min, Slack's tier 2), for
    benchmarks of something else that declare more incidents than the pacer's burst. The fake
    Slack enforces no limit here; declare_ratelimit.py measures the limit itself.
    """

    def __init__(
        self, *, fake: FakeSlack, bot_yml: str = BOT_YML, unpaced: bool = False, database_url: str | None = None
    ) -> None:
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-bot-")
        directory = Path(self.tmp.name)
        self.database_url = database_url or f"sqlite:///{directory / 'bot.db'}"
        super().__init__(fake=fake, database_url=self.database_url, directory=directory, bot_yml=bot_yml)
        self.boot_seconds = 0.0
        self.command = [sys.executable, "-c", UNPACED_MAIN] if unpaced else [sys.executable, "-m", "bot"]

    async def start(self, *, within: float = 30.0) -> float:
        """Exec `command` and wait for /health 200; `boot_seconds` is exec → healthy. Can be called again."""
        self.boot_seconds = await super().start(within=within)
        return self.boot_seconds

    def query(self, sql: str) -> list[tuple[Any, ...]]:
        """Rows straight from the bot's database (SQLite file or PostgreSQL), read-only SQL."""
        if self.database_url.startswith("sqlite"):
            import sqlite3

            with sqlite3.connect(self.directory / "bot.db", timeout=30) as db:
                return db.execute(sql).fetchall()
        import psycopg

        with psycopg.connect(self.database_url) as conn:
            return conn.execute(sql).fetchall()  # type: ignore[arg-type]

    def log_summary(self, top: int = 8) -> None:
        """The bot's own warnings and errors (JSON log lines), counted, for the printed report."""
        counts: Counter[str] = Counter()
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            try:
                entry = json.loads(line)
            except ValueError:
                if "Traceback" in line or "Error" in line:
                    counts[f"raw: {line[:110]}"] += 1
                continue
            if entry.get("level") in ("warning", "error", "critical"):
                message = re.sub(r"\d+", "N", str(entry.get("message")))[:100]
                counts[f"{entry['level'].upper()} {entry.get('logger')}: {message}"] += 1
        total = sum(counts.values())
        print(f"bot log: {total} warnings/errors" + (":" if total else ""))
        for key, n in counts.most_common(top):
            print(f"  {n:5d} x {key}")

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def status_kib(self, field: str = "VmRSS") -> int:
        """A memory figure of the bot process from /proc/<pid>/status, in KiB."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
        raise RuntimeError(f"{field} not in /proc/{self.pid}/status")

    def cpu_seconds(self) -> float:
        """CPU time (user + system) the bot process has used so far, from /proc/<pid>/stat.

        On a loaded machine wall time says how busy the others were; CPU time says what the bot did.
        """
        return _cpu_seconds(Path(f"/proc/{self.pid}/stat"))

    def loop_cpu_seconds(self) -> float:
        """The same for the main thread alone: the event loop, without the database driver's threads."""
        return _cpu_seconds(Path(f"/proc/{self.pid}/task/{self.pid}/stat"))

    def stop(self) -> None:
        super().stop()
        self.tmp.cleanup()


def slash(
    text: str, *, response_url: str, user: str = "U0ALICE", channel: str = "C0GENERAL", n: int = 0
) -> tuple[str, dict[str, str]]:
    return req.slash_command(
        "/incident",
        text,
        secret=SECRET,
        response_url=response_url,
        user_id=user,
        channel_id=channel,
        trigger_id=f"bench-trig-{n}",
    )


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile (no interpolation: p99 of 200 samples is the 198th)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    rank = max(1, min(len(ordered), round(pct / 100 * len(ordered) + 0.5)))
    return ordered[rank - 1]


def summary_ms(values: Sequence[float]) -> dict[str, float]:
    ms = [v * 1000 for v in values]
    return {
        "n": len(ms),
        "p50": percentile(ms, 50),
        "p90": percentile(ms, 90),
        "p99": percentile(ms, 99),
        "max": max(ms),
        "mean": statistics.fmean(ms),
    }


class LoopLag:
    """How late this process's event loop wakes a 10 ms sleeper, and how busy the process is.

    The fake Slack answers the bot from the benchmark's own event loop and stamps each message when
    it handles it. A busy loop here delays those stamps: a figure measured through the fake includes
    this lag, which a real Slack (not on the bot's machine) would not add.
    """

    def __init__(self, every: float = 0.01) -> None:
        self.every = every
        self.lags: list[float] = []
        self._task: asyncio.Task[None] | None = None
        self._cpu = self._wall = 0.0

    async def _watch(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            await asyncio.sleep(self.every)
            self.lags.append(max(0.0, loop.time() - before - self.every))

    def start(self) -> LoopLag:
        self.lags.clear()
        self._cpu, self._wall = time.process_time(), time.perf_counter()
        self._task = asyncio.get_running_loop().create_task(self._watch())
        return self

    def stop(self) -> str:
        """Stops watching; returns a one-line summary."""
        if self._task is not None:
            self._task.cancel()
        cpu = (time.process_time() - self._cpu) / max(time.perf_counter() - self._wall, 1e-9)
        lag = summary_ms(self.lags) if self.lags else {"p50": 0.0, "p99": 0.0, "max": 0.0}
        return (
            f"benchmark process (fake Slack): CPU {cpu:.0%} of a core, event loop lag "
            f"p50 {lag['p50']:.0f} ms  p99 {lag['p99']:.0f} ms  max {lag['max']:.0f} ms"
        )


class LogTally(logging.Handler):
    """Counts the bot's warnings and errors by logger and exception type instead of printing tracebacks."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.counts: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        exc = record.exc_info[1] if record.exc_info else None
        detail = f"{type(exc).__name__}: {str(exc).splitlines()[0][:90]}" if exc else record.getMessage()[:110]
        self.counts[f"{record.levelname} {record.name}: {detail}"] += 1

    def install(self) -> LogTally:
        root = logging.getLogger()
        root.handlers[:] = [self]
        root.setLevel(logging.WARNING)
        return self

    def report(self, top: int = 8) -> None:
        errors = sum(n for key, n in self.counts.items() if key.startswith(("ERROR", "CRITICAL")))
        warnings = sum(n for key, n in self.counts.items() if key.startswith("WARNING"))
        print(f"bot log: {errors} errors, {warnings} warnings")
        for key, n in self.counts.most_common(top):
            print(f"  {n:5d} x {key}")


def machine() -> dict[str, Any]:
    model = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "python": platform.python_version(),
        "load_avg_1m": round(load[0], 2),
    }


def speed_reference_ms() -> float:
    """CPU time of a fixed pure-Python workload (objects, dicts, strings, JSON), the best of five.

    Easy to miss: on this project's machines (virtual, shared) the same code's CPU time moves by a
    third or more from one hour to the next, with nothing else running. A figure is comparable with
    one taken at another time only next to this reference: divide by it (`in reference units`).
    """
    payload = {"channel": "C0INCIDENT", "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 80}}]}
    best = float("inf")
    for _ in range(5):
        started = time.process_time()
        for i in range(2_000):
            body = json.loads(json.dumps({**payload, "ts": f"{i}.000100", "n": i}))
            words = " ".join(f"{k}={v}" for k, v in body.items()).split()
            sorted(words, key=len)
        best = min(best, time.process_time() - started)
    return best * 1000


def print_machine() -> float:
    """The machine, its load, and its speed right now (`speed_reference_ms`, returned)."""
    info = machine()
    reference = speed_reference_ms()
    print(
        f"machine: {info['nproc']} CPUs, {info['cpu']}, Python {info['python']}, "
        f"load average (1 min) at start {info['load_avg_1m']}, speed reference {reference:.1f} ms of CPU "
        "(a fixed Python workload: lower is faster)"
    )
    return reference


def print_json(name: str, figures: dict[str, Any]) -> None:
    """One machine-readable line per benchmark, for whoever updates the README table."""
    print(f"RESULT {name} " + json.dumps(figures, default=str))


def _cpu_seconds(stat: Path) -> float:
    fields = stat.read_text().rsplit(")", 1)[1].split()
    utime, stime = int(fields[11]), int(fields[12])  # fields 14 and 15 of proc(5), after "pid (comm)"
    return (utime + stime) / os.sysconf("SC_CLK_TCK")
