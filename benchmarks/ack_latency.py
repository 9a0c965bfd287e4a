"""Slash-command acknowledgement latency in HTTP mode: 50 concurrent signed requests on loopback.

    .venv/bin/python benchmarks/ack_latency.py [--concurrency 50] [--rounds 4]

The bot runs as `python -m bot` (its own process, HTTP mode, SQLite in a temporary directory)
against the fake Slack Web API, which runs in this process together with the load generator.
Each round sends `concurrency` signed requests at once and times each from send to the HTTP
answer (the ack Slack waits for, 3 s allowed; target p99 <= 50 ms). Two commands:

- `/incident list`: the ack is empty and the list is sent after it through response_url.
- `/incident declare P3 ...`: the ack is empty; after it the bot stores the incident, creates the
  channel, invites, sets the topic, posts and pins the summary, announces, and replies. Those
  after-ack steps of earlier requests compete with the acks of later ones, as in a real storm.

A warm-up round (not counted) opens connections and fills caches. The bot's pacing of
conversations.create (20/min, Slack's tier 2) is lifted unless `--paced`: 250 channels would
otherwise take 12 minutes, and this measures acks, not Slack's limit (declare_ratelimit.py does).
Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

import httpx
from _common import BotProcess, print_json, print_machine, seeded_fake, slash, summary_ms

from tests.fakes.slack_api import FakeSlack

_keys = itertools.count(1)


async def _round(
    client: httpx.AsyncClient, bot: BotProcess, fake: FakeSlack, text: str, n: int
) -> tuple[list[float], float]:
    """One burst; returns per-request ack latencies and the time until every after-ack reply arrived."""
    requests = []
    for i in range(n):
        key = f"r{next(_keys)}"
        body, headers = slash(
            text.format(i=key),
            response_url=fake.response_url(key, channel_id="C0GENERAL", user_id="U0ALICE"),
            n=i,
        )
        requests.append((body, headers))
    replies_before = len(fake.responses)
    started = time.perf_counter()

    async def one(body: str, headers: dict[str, str]) -> float:
        t0 = time.perf_counter()
        response = await client.post(f"{bot.url}/slack/events", content=body.encode(), headers=headers)
        elapsed = time.perf_counter() - t0
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}: {response.text[:200]}")
        return elapsed

    latencies = await asyncio.gather(*(one(b, h) for b, h in requests))
    while len(fake.responses) - replies_before < n:
        if time.perf_counter() - started > 60:
            raise RuntimeError(f"only {len(fake.responses) - replies_before}/{n} replies after 60 s")
        await asyncio.sleep(0.005)
    return list(latencies), time.perf_counter() - started


async def main(concurrency: int, rounds: int, paced: bool) -> None:
    print_machine()
    fake = await seeded_fake()
    bot = BotProcess(slack_api_url=fake.url, unpaced=not paced)
    try:
        await bot.start()
        print(f"bot pid {bot.pid} healthy after {bot.boot_seconds:.2f} s")
        if not paced:
            print(
                "conversations.create pacing lifted (the fake has no limit; --paced keeps the bot's 20/min)"
            )
        limits = httpx.Limits(max_connections=concurrency * 2, max_keepalive_connections=concurrency * 2)
        async with httpx.AsyncClient(timeout=30, limits=limits) as client:
            # Baseline: the same request one at a time, so queueing and per-request cost can be told apart.
            await _round(client, bot, fake, "list", 1)
            single: list[float] = []
            for _ in range(50):
                got, _ = await _round(client, bot, fake, "list", 1)
                single += got
            base = summary_ms(single)
            print(
                f"/incident list     one at a time  n={base['n']:4d}  p50 {base['p50']:6.1f} ms  "
                f"p99 {base['p99']:6.1f} ms"
            )
            print_json("ack_latency.single", base)
            for label, text in (("list", "list"), ("declare", "declare P3 Bench {i} checkout latency")):
                await _round(client, bot, fake, text, concurrency)  # warm-up
                latencies: list[float] = []
                completions: list[float] = []
                for _ in range(rounds):
                    got, done = await _round(client, bot, fake, text, concurrency)
                    latencies += got
                    completions.append(done)
                figures = summary_ms(latencies)
                print(
                    f"/incident {label:8s} ack  n={figures['n']:4d}  p50 {figures['p50']:6.1f} ms  "
                    f"p90 {figures['p90']:6.1f} ms  p99 {figures['p99']:6.1f} ms  "
                    f"max {figures['max']:6.1f} ms  "
                    f"(target p99 <= 50 ms: {'met' if figures['p99'] <= 50 else 'MISSED'})"
                )
                print(
                    f"/incident {label:8s} all {concurrency} replies delivered (after-ack work done) in "
                    f"{min(completions):.2f}-{max(completions):.2f} s per burst"
                )
                print_json(f"ack_latency.{label}", {**figures, "burst_done_s": max(completions)})
        channels = sum(1 for c in fake.channels.values() if c.name.startswith("inc-"))
        print(f"incident channels created: {channels} (expected {concurrency * (rounds + 1)})")
        bot.log_summary()
    finally:
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
    args = parser.parse_args()
    asyncio.run(main(args.concurrency, args.rounds, args.paced))
