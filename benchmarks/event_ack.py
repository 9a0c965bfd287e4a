"""Message events' acknowledgement while declarations storm: what storing a message before the ack costs.

    .venv/bin/python benchmarks/event_ack.py [--concurrency 50] [--rounds 4] [--database postgresql]

A message posted in an incident channel is stored before the bot answers Slack (a database blip
after a 200 would lose it: Slack never retries an event it got a 200 for), so its ack waits for one
short transaction, and on SQLite for the write lock while declarations write. Slack allows 3 s;
the commands' target (p99 <= 50 ms, ack_latency.py) is the bar here too.

The same three processes as ack_latency.py (the bot, the fake Slack here, `_loadgen.py`). A
warm-up burst declares `concurrency` incidents, whose channels then receive the messages. Then
`rounds` bursts of each:
- `messages`: `concurrency` message events at once, one per incident channel;
- `mixed`: half declarations, half message events, at once: a message posted while a storm of
  declarations writes. The message events' acks are reported apart from the commands'.
At the end it counts the messages on the timelines (each stored once). Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import time

from _common import SECRET, BotProcess, database_url_for, print_json, print_machine, seeded_fake, slash, summary_ms
from ack_latency import LoadGen

from tests import slack_requests as req
from tests.fakes.slack_api import FakeSlack

_ids = itertools.count(1)


def message_event(channel: str) -> tuple[str, dict[str, str]]:
    n = next(_ids)
    ts = f"{int(time.time())}.{n:06d}"
    event = {"type": "message", "channel": channel, "user": "U0ALICE", "text": f"bench note {n}", "ts": ts}
    return req.event_callback(event, secret=SECRET, event_id=f"EvBench{n}")


def declaration(fake: FakeSlack, i: int) -> tuple[str, dict[str, str]]:
    key = f"e{next(_ids)}"
    return slash(
        f"declare P3 Bench {key} checkout latency",
        response_url=fake.response_url(key, channel_id="C0GENERAL", user_id="U0ALICE"),
        n=i,
    )


def _report(label: str, latencies: list[float]) -> dict[str, float]:
    figures = summary_ms(latencies)
    print(
        f"{label:28s} ack  n={figures['n']:4d}  p50 {figures['p50']:6.1f} ms  p90 {figures['p90']:6.1f} ms  "
        f"p99 {figures['p99']:6.1f} ms  max {figures['max']:6.1f} ms  (p99 <= 50 ms: "
        f"{'met' if figures['p99'] <= 50 else 'MISSED'}; Slack allows 3,000 ms)"
    )
    return figures


async def _bursts(loadgen: LoadGen, fake: FakeSlack, channels: list[str], rounds: int) -> None:
    n = loadgen.connections
    alone: list[float] = []
    with_storm: list[float] = []
    commands: list[float] = []
    for _ in range(rounds):
        result = await loadgen.round([message_event(channels[i % len(channels)]) for i in range(n)])
        alone += result["latencies"]
    for _ in range(rounds):
        half = n // 2
        mixed = [declaration(fake, i) for i in range(half)] + [message_event(channels[i]) for i in range(n - half)]
        result = await loadgen.round(mixed)
        commands += result["latencies"][:half]
        with_storm += result["latencies"][half:]
        await asyncio.sleep(2)  # the declarations' after-ack work ends before the next burst
    print_json("event_ack.messages", _report("message events alone", alone))
    print_json("event_ack.mixed_messages", _report("message events in a storm", with_storm))
    print_json("event_ack.mixed_declares", _report("declarations beside them", commands))


async def main(concurrency: int, rounds: int, database: str) -> None:
    print_machine()
    fake = await seeded_fake()
    with database_url_for(database) as database_url:
        bot = BotProcess(fake=fake, unpaced=True, database_url=database_url)
        loadgen = LoadGen(bot, concurrency)
        try:
            await _run(bot, loadgen, fake, rounds)
        finally:
            await loadgen.stop()
            bot.stop()
            await fake.stop()


async def _run(bot: BotProcess, loadgen: LoadGen, fake: FakeSlack, rounds: int) -> None:
    concurrency = loadgen.connections
    await bot.start()
    await loadgen.start()
    await loadgen.round([declaration(fake, i) for i in range(concurrency)])  # the channels to post in
    await asyncio.sleep(3)
    channels = [c.id for c in fake.channels.values() if c.name.startswith("inc-")]
    print(f"{len(channels)} incident channels; the load from {concurrency} keep-alive connections")
    await _bursts(loadgen, fake, channels, rounds)
    await asyncio.sleep(3)
    [(stored,)] = bot.query("SELECT count(*) FROM timeline_events WHERE text LIKE 'bench note %'")
    expected = rounds * (concurrency + concurrency - concurrency // 2)
    print(f"messages on the timelines: {stored} (expected {expected}: each stored once)")
    bot.log_summary()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--database", choices=["sqlite", "postgresql"], default="sqlite")
    args = parser.parse_args()
    asyncio.run(main(args.concurrency, args.rounds, args.database))
