"""Slash-command acknowledgement latency in HTTP mode: 50 concurrent signed requests on loopback.

    .venv/bin/python benchmarks/ack_latency.py [--concurrency 50] [--rounds 4] [--paced] [--database postgresql]

Three processes. The bot runs as `python -m bot` (HTTP mode, SQLite in a temporary directory, or
with `--database postgresql` a throwaway PostgreSQL server started as page_lateness.py starts it).
The fake Slack Web API runs in this process: the bot calls it, and its after-ack replies to
`response_url` land in `fake.responses`, which this process counts. The load comes from
`_loadgen.py`, a separate process with nothing else to do: it keeps `concurrency` keep-alive
HTTP/1.1 connections open (plain asyncio streams), and on a "go" line writes one request per
connection back-to-back and times each from just before its write to the end of its response.

Why a separate load generator: during a burst this process is busy serving the bot's API calls
and response_url posts, and an in-process client (httpx, ~1 ms of CPU per request) queues behind
that and behind itself, so the 50th request of a burst was sent ~50 ms after the first and its
figure held the client's delay, not the bot's. The requests are signed here just before each
round (fresh timestamps, Slack's 5-minute window) and the load generator serialises them before
the clock starts. Each round also prints the send spread (first write to last write).

Each round sends `concurrency` requests at once; the figure is the HTTP answer (the ack Slack
waits for, 3 s allowed; target p99 <= 50 ms). Two commands:

- `/incident list`: the ack is empty and the list is sent after it through response_url.
- `/incident declare P3 ...`: the ack is empty; after it the bot stores the incident, creates the
  channel, invites, sets the topic, posts and pins the summary, announces, and replies. Those
  after-ack steps of earlier requests compete with the acks of later ones, as in a real storm.

Next to the client-side figures it prints the bot's own view: the `incident_bot_ack_latency_seconds`
histogram (kind="command") from its /metrics, scraped before and after the measured bursts, as the
share of acks within 5/10/25/50/100/250 ms. The bot starts that clock when its HTTP middleware
runs for the request and stops it when the front door accepts it, so the gap between the two
is everything outside that handler: loopback, the request waiting in the socket while the bot's
event loop runs other tasks (after-ack work, a garbage collection), aiohttp's parsing and
writing, and the load generator's own reading.

A warm-up round (not counted) fills caches. The bot's pacing of conversations.create (20/min,
Slack's tier 2) is lifted unless `--paced`: 250 channels would otherwise take 12 minutes, and
this measures acks, not Slack's limit (declare_ratelimit.py does). Prints figures; never asserts.
The three processes share the machine's CPUs: on 2 CPUs the bot, the fake Slack and the load
generator compete during a declare burst.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import signal
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from _common import BotProcess, database_url_for, print_json, print_machine, seeded_fake, slash, summary_ms
from prometheus_client.parser import text_string_to_metric_families

from tests.fakes.slack_api import FakeSlack

LOADGEN = Path(__file__).resolve().with_name("_loadgen.py")
ACK_HISTOGRAM = "incident_bot_ack_latency_seconds"
SHARE_BOUNDS_MS = (5, 10, 25, 50, 100, 250)

_keys = itertools.count(1)


class LoadGen:
    """`_loadgen.py` as a subprocess: one JSON file and one stdin line per round, one JSON line back."""

    def __init__(self, bot: BotProcess, connections: int) -> None:
        self.bot = bot
        self.connections = connections
        self.tmp = tempfile.TemporaryDirectory(prefix="bench-loadgen-")
        self.rounds = itertools.count(1)
        self.process: asyncio.subprocess.Process | None = None

    async def start(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(LOADGEN),
            "--port",
            str(self.bot.port),
            "--connections",
            str(self.connections),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        ready = await self._line(within=30)
        if ready.get("ready") != self.connections:
            raise RuntimeError(f"the load generator said {ready!r}")

    async def _line(self, *, within: float) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await asyncio.wait_for(self.process.stdout.readline(), within)
        if not line:
            raise RuntimeError(f"the load generator exited ({await self.process.wait()})")
        return json.loads(line)  # type: ignore[no-any-return]

    async def round(self, requests: list[tuple[str, dict[str, str]]]) -> dict[str, Any]:
        """Writes the round's file, says go, and returns the generator's figures (raises on any error)."""
        assert self.process is not None and self.process.stdin is not None
        path = Path(self.tmp.name) / f"round-{next(self.rounds)}.json"
        path.write_text(json.dumps([{"body": body, "headers": headers} for body, headers in requests]))
        self.process.stdin.write(f"{path}\n".encode())
        await self.process.stdin.drain()
        result = await self._line(within=120)
        if result["errors"]:
            raise RuntimeError(f"{len(result['errors'])} requests failed, e.g. {result['errors'][0]}")
        return result

    async def stop(self) -> None:
        if self.process is not None and self.process.returncode is None:
            assert self.process.stdin is not None
            self.process.stdin.write(b"\n")
            self.process.stdin.close()
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()
        self.tmp.cleanup()


async def _round(loadgen: LoadGen, fake: FakeSlack, text: str, n: int) -> tuple[list[float], float, float]:
    """One burst; returns per-request ack latencies, the send spread and the time until every reply arrived."""
    requests = []
    for i in range(n):
        key = f"r{next(_keys)}"
        requests.append(
            slash(
                text.format(i=key),
                response_url=fake.response_url(key, channel_id="C0GENERAL", user_id="U0ALICE"),
                n=i,
            )
        )
    replies_before = len(fake.responses)
    started = time.perf_counter()
    result = await loadgen.round(requests)
    while len(fake.responses) - replies_before < n:
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"only {len(fake.responses) - replies_before}/{n} replies after 60 s")
        await asyncio.sleep(0.005)
    return result["latencies"], result["spread"], time.perf_counter() - started


async def _ack_buckets(client: httpx.AsyncClient, bot: BotProcess) -> dict[float, float]:
    """The bot's cumulative ack histogram for commands: upper bound in seconds -> count."""
    response = await client.get(f"{bot.url}/metrics")
    response.raise_for_status()
    buckets: dict[float, float] = {}
    for family in text_string_to_metric_families(response.text):
        if family.name != ACK_HISTOGRAM:
            continue
        for sample in family.samples:
            if sample.name == f"{ACK_HISTOGRAM}_bucket" and sample.labels.get("kind") == "command":
                buckets[float(sample.labels["le"])] = sample.value
    return buckets


def _shares(before: dict[float, float], after: dict[float, float]) -> tuple[int, dict[str, float]]:
    """How many acks the bot timed between two scrapes, and the share of them within each bound (ms)."""
    total = after.get(float("inf"), 0.0) - before.get(float("inf"), 0.0)
    shares: dict[str, float] = {}
    for bound in SHARE_BOUNDS_MS:
        le = bound / 1000
        if le in after:
            shares[str(bound)] = (after[le] - before.get(le, 0.0)) / total if total else float("nan")
    return int(total), shares


def _print_bot_side(label: str, n: int, shares: dict[str, float]) -> None:
    within = "  ".join(f"<={bound} ms {share * 100:5.1f}%" for bound, share in shares.items())
    print(f"/incident {label:8s} bot-side ack (its /metrics, {n} acks): {within}")


async def _settle(bot: BotProcess, *, quiet: float = 0.01, every: float = 0.25, within: float = 10.0) -> None:
    """Waits until the bot's CPU is quiet (work spawned after the last reply, e.g. signal handlers, is done)."""
    deadline = time.monotonic() + within
    last = bot.cpu_seconds()
    while time.monotonic() < deadline:
        await asyncio.sleep(every)
        now = bot.cpu_seconds()
        if now - last <= quiet:
            return
        last = now


async def _start_py_spy(bot: BotProcess, prefix: str | None, label: str) -> asyncio.subprocess.Process | None:
    """`py-spy record` on the bot for the measured bursts (`--py-spy PREFIX`: PREFIX-<label>.txt, collapsed)."""
    if prefix is None:
        return None
    command = f"record --pid {bot.pid} --format raw --rate 200 --output {prefix}-{label}.txt".split()
    py_spy = Path(sys.executable).with_name("py-spy")  # pip install py-spy into the venv
    spy = await asyncio.create_subprocess_exec(py_spy, *command, stdout=asyncio.subprocess.DEVNULL)
    await asyncio.sleep(1)  # py-spy attaches
    return spy


async def _stop_py_spy(spy: asyncio.subprocess.Process | None) -> None:
    if spy is not None:
        spy.send_signal(signal.SIGINT)
        await spy.wait()


async def _single(loadgen: LoadGen, fake: FakeSlack, bot: BotProcess, metrics: httpx.AsyncClient) -> None:
    """Baseline: the same request one at a time, so queueing and per-request cost can be told apart."""
    await _round(loadgen, fake, "list", 1)
    before = await _ack_buckets(metrics, bot)
    single: list[float] = []
    for _ in range(50):
        got, _, _ = await _round(loadgen, fake, "list", 1)
        single += got
    n_bot, shares = _shares(before, await _ack_buckets(metrics, bot))
    base = summary_ms(single)
    print(f"/incident list     one at a time  n={base['n']:4d}  p50 {base['p50']:6.1f} ms  p99 {base['p99']:6.1f} ms")
    _print_bot_side("list", n_bot, shares)
    print_json("ack_latency.single", {**base, "bot_share_within_ms": shares})


def _print_per_burst(label: str, spreads: list[float], ranges: list[tuple[float, float]]) -> None:
    print(
        f"/incident {label:8s} per burst: send spread (first to last write) "
        + ", ".join(f"{s * 1000:.2f}" for s in spreads)
        + " ms; fastest-slowest ack "
        + ", ".join(f"{a * 1000:.1f}-{b * 1000:.1f}" for a, b in ranges)
        + " ms"
    )


async def _bursts(
    run: tuple[LoadGen, FakeSlack, BotProcess, httpx.AsyncClient],
    label: str,
    text: str,
    rounds: int,
    py_spy: str | None,
    reference: float = 0.0,
) -> None:
    """`rounds` bursts of one command after a warm-up: acks, completion, and the bot's CPU per request
    (also in units of the machine's speed reference, `reference` ms: see `_common.speed_reference_ms`)."""
    loadgen, fake, bot, metrics = run
    concurrency = loadgen.connections
    await _round(loadgen, fake, text, concurrency)  # warm-up
    await _settle(bot)
    before = await _ack_buckets(metrics, bot)
    cpu_before, loop_before = bot.cpu_seconds(), bot.loop_cpu_seconds()
    spy = await _start_py_spy(bot, py_spy, label)
    latencies: list[float] = []
    spreads: list[float] = []
    ranges: list[tuple[float, float]] = []
    completions: list[float] = []
    for _ in range(rounds):
        got, spread, done = await _round(loadgen, fake, text, concurrency)
        latencies += got
        spreads.append(spread)
        ranges.append((min(got), max(got)))
        completions.append(done)
    await _settle(bot)
    cpu = bot.cpu_seconds() - cpu_before
    loop_cpu = bot.loop_cpu_seconds() - loop_before
    await _stop_py_spy(spy)
    n_bot, shares = _shares(before, await _ack_buckets(metrics, bot))
    figures = summary_ms(latencies)
    print(
        f"/incident {label:8s} ack  n={figures['n']:4d}  p50 {figures['p50']:6.1f} ms  "
        f"p90 {figures['p90']:6.1f} ms  p99 {figures['p99']:6.1f} ms  max {figures['max']:6.1f} ms  "
        f"(target p99 <= 50 ms: {'met' if figures['p99'] <= 50 else 'MISSED'})"
    )
    _print_per_burst(label, spreads, ranges)
    _print_bot_side(label, n_bot, shares)
    print(
        f"/incident {label:8s} all {concurrency} replies delivered (after-ack work done) in "
        f"{min(completions):.2f}-{max(completions):.2f} s per burst"
    )
    per_request = cpu / (concurrency * rounds) * 1000
    print(
        f"/incident {label:8s} bot CPU {cpu:.2f} s for {concurrency * rounds} requests: {per_request:.1f} ms each "
        "(ack and after-ack work, its driver threads included; process CPU time, not wall time)"
    )
    loop_ms = loop_cpu / (concurrency * rounds) * 1000
    print(f"/incident {label:8s} of which the event loop's thread {loop_ms:.1f} ms each (the rest: driver threads)")
    if reference:
        print(
            f"/incident {label:8s} bot CPU in reference units: {per_request / reference:.3f} "
            f"(speed reference {reference:.1f} ms; compare runs of different hours in these units)"
        )
    print_json(
        f"ack_latency.{label}",
        {
            **figures,
            "burst_done_s": max(completions),
            "bot_cpu_ms_per_request": round(per_request, 2),
            "loop_cpu_ms_per_request": round(loop_ms, 2),
            "speed_reference_ms": round(reference, 2),
            "send_spread_ms": [round(s * 1000, 3) for s in spreads],
            "bot_share_within_ms": shares,
        },
    )


async def main(concurrency: int, rounds: int, paced: bool, py_spy: str | None = None, database: str = "sqlite") -> None:
    reference = print_machine()
    fake = await seeded_fake()
    with database_url_for(database) as database_url:
        bot = BotProcess(fake=fake, unpaced=not paced, database_url=database_url)
        loadgen = LoadGen(bot, concurrency)
        try:
            await bot.start()
            print(f"bot pid {bot.pid} healthy after {bot.boot_seconds:.2f} s")
            if not paced:
                print("conversations.create pacing lifted (the fake has no limit; --paced keeps the bot's 20/min)")
            await loadgen.start()
            print(f"load generator: {concurrency} keep-alive connections from a separate process ({LOADGEN.name})")
            async with httpx.AsyncClient(timeout=30) as metrics:
                await _single(loadgen, fake, bot, metrics)
                for label, text in (("list", "list"), ("declare", "declare P3 Bench {i} checkout latency")):
                    await _bursts((loadgen, fake, bot, metrics), label, text, rounds, py_spy, reference)
            channels = sum(1 for c in fake.channels.values() if c.name.startswith("inc-"))
            print(f"incident channels created: {channels} (expected {concurrency * (rounds + 1)})")
            bot.log_summary()
        finally:
            await loadgen.stop()
            bot.stop()
            await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument(
        "--paced",
        action="store_true",
        help="keep the bot's 20/min channel pacing (declare bursts then take minutes)",
    )
    parser.add_argument(
        "--py-spy",
        metavar="PREFIX",
        help="profile the bot with py-spy during the measured bursts (collapsed stacks in PREFIX-<command>.txt)",
    )
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(main(args.concurrency, args.rounds, args.paced, args.py_spy, args.database))
