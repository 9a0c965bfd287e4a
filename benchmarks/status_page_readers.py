"""Status page readers during an outage: 1,000 concurrent readers while 20 incidents are declared and paged.

    .venv/bin/python benchmarks/status_page_readers.py [--readers 1000] [--incidents 20] [--think 1.0]

The bot runs as `python -m bot` (HTTP mode, SQLite) against the fake Slack in this process, with a
status page (two components, an incident with two public updates already published) and escalation
levels at 2 s and 4 s. The readers run in their own process (`_readers.py`): each holds a keep-alive
connection and reads `summary.json` and the HTML page alternately, a second apart (jittered), as
browsers and tools polling the JSON do. Page lateness = when a page DM reached the fake Slack minus
its due time, as in page_lateness.py.

Phases, each printed side by side:
  A. declares only: `--incidents` declared at once, no readers: page lateness.
  B. readers only: `--readers` readers for `--seconds`: reader latency.
  C. both: the readers, and `--incidents` declared 3 s in: reader latency and page lateness.
  D. burst: every reader sends one request at the same instant, 3 times: reader latency.
Targets: reader p99 <= 100 ms, page lateness p99 <= 1 s. Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from _common import BotProcess, LoopLag, print_json, print_machine, seeded_fake, slash, summary_ms
from page_lateness import LEVEL_USERS, bot_yml, declare_many, due_times, lateness, page_dms, wait_for

from tests.fakes.slack_api import FakeSlack

READERS = Path(__file__).resolve().parent / "_readers.py"
STATUS_PAGE = (
    "services: {api: {}, web: {}}\nstatus_page:\n  title: Bench status\n  components: {API: [api], Website: [web]}\n"
)


async def seed(client: httpx.AsyncClient, bot: BotProcess, fake: FakeSlack) -> None:
    """One public incident with two updates, so the page has something to show."""
    await declare_many(client, bot, fake, 1, 1)
    channel = ""
    for _ in range(200):
        rows = bot.query("SELECT channel_id FROM incidents WHERE id = 1")
        channel = rows[0][0] if rows and rows[0][0] else ""
        if channel:
            break
        await asyncio.sleep(0.05)
    for n, text in enumerate(("publish major Payments fail for some customers.", "publish A fix is rolling out.")):
        body, headers = slash(text, response_url=fake.response_url(f"seed{n}", channel_id=channel), channel=channel)
        (await client.post(f"{bot.url}/slack/events", content=body.encode(), headers=headers)).raise_for_status()
    for _ in range(200):
        if bot.query("SELECT count(*) FROM status_page_updates")[0][0] == 2:
            return
        await asyncio.sleep(0.05)
    raise RuntimeError("the seed updates were not published")


class Readers:
    def __init__(self, bot: BotProcess, *, mode: str, readers: int, seconds: float, think: float) -> None:
        self.args = [
            sys.executable,
            str(READERS),
            "--port",
            str(bot.port),
            "--readers",
            str(readers),
            "--mode",
            mode,
            "--seconds",
            str(seconds),
            "--think",
            str(think),
        ]
        self.process: asyncio.subprocess.Process | None = None

    async def ready(self) -> None:
        self.process = await asyncio.create_subprocess_exec(
            *self.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, limit=2**26
        )  # one JSON line with every latency: far over asyncio's 64 KiB line limit
        assert self.process.stdout is not None
        line = await self.process.stdout.readline()
        if not line:
            raise RuntimeError("the readers process died before it was ready")

    async def go(self) -> None:
        assert self.process is not None and self.process.stdin is not None
        self.process.stdin.write(b"go\n")
        await self.process.stdin.drain()

    async def result(self) -> dict[str, Any]:
        assert self.process is not None and self.process.stdout is not None
        line = await self.process.stdout.readline()
        await self.process.wait()
        return json.loads(line)


async def declare_and_measure(
    client: httpx.AsyncClient, bot: BotProcess, fake: FakeSlack, first: int, count: int
) -> dict[str, float]:
    await declare_many(client, bot, fake, first, count)
    keys = [(n, level) for n in range(first, first + count) for level in LEVEL_USERS]
    await wait_for(lambda: all(k in page_dms(fake) for k in keys), 60)
    return summary_ms(lateness(keys, due_times(bot), page_dms(fake)))


def fmt(figures: dict[str, Any] | None) -> str:
    if not figures:
        return "-"
    return f"p50 {figures['p50']:.0f} ms  p99 {figures['p99']:.0f} ms  max {figures['max']:.0f} ms (n={figures['n']})"


def reader_figures(result: dict[str, Any]) -> dict[str, Any]:
    figures: dict[str, Any] = summary_ms(result["latencies"])
    figures["errors"] = len(result["errors"])
    figures["statuses"] = result["statuses"]
    return figures


async def main(readers: int, incidents: int, seconds: float, think: float) -> None:
    print_machine()
    fake = await seeded_fake()
    bot = BotProcess(fake=fake, bot_yml=bot_yml(2, 4) + STATUS_PAGE, unpaced=True)
    rows: dict[str, dict[str, Any]] = {}
    try:
        await bot.start()
        async with httpx.AsyncClient(timeout=60) as client:
            await seed(client, bot, fake)
            await asyncio.sleep(5)  # the seed incident's pages are out

            watch = LoopLag().start()
            rows["A. declares only"] = {"pages": await declare_and_measure(client, bot, fake, 2, incidents)}
            print(f"A: {watch.stop()}")

            steady = Readers(bot, mode="steady", readers=readers, seconds=seconds, think=think)
            await steady.ready()
            await steady.go()
            rows["B. readers only"] = {"readers": reader_figures(await steady.result())}

            both = Readers(bot, mode="steady", readers=readers, seconds=seconds + 5, think=think)
            await both.ready()
            await both.go()
            await asyncio.sleep(3)
            watch = LoopLag().start()
            started = time.perf_counter()
            pages = await declare_and_measure(client, bot, fake, 2 + incidents, incidents)
            print(f"C: pages of {incidents} incidents out in {time.perf_counter() - started:.1f} s; {watch.stop()}")
            rows["C. readers + declares"] = {"pages": pages, "readers": reader_figures(await both.result())}

            burst = Readers(bot, mode="burst", readers=readers, seconds=0, think=0)
            await burst.ready()
            await burst.go()
            rows["D. burst (all at once)"] = {"readers": reader_figures(await burst.result())}

        print(f"\n{readers} readers (keep-alive, one read every ~{think:g} s each), {incidents} incidents per phase")
        print(f"{'phase':26} {'reader latency (target p99 <= 100 ms)':56} page lateness (target p99 <= 1000 ms)")
        for name, row in rows.items():
            print(f"{name:26} {fmt(row.get('readers')):56} {fmt(row.get('pages'))}")
        for name, row in rows.items():
            if row.get("readers", {}).get("errors"):
                print(f"  {name}: {row['readers']['errors']} reader errors; statuses {row['readers']['statuses']}")
        print_json("status_page_readers", {name: row for name, row in rows.items()})
        bot.log_summary()
    finally:
        bot.stop()
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--incidents", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=15.0, help="how long the readers read (phase B)")
    parser.add_argument("--think", type=float, default=1.0, help="seconds between one reader's reads")
    args = parser.parse_args()
    asyncio.run(main(args.readers, args.incidents, args.seconds, args.think))
