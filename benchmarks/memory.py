"""Resident memory of the bot process: idle after start, and after a burst of work.

    .venv/bin/python benchmarks/memory.py [--declares 100] [--settle 3]

Starts `python -m bot` in HTTP mode (SQLite in a temporary directory, a dummy token and signing
secret, SLACK_API_URL pointing at the fake Slack in this process), waits until /health answers
200, waits `--settle` seconds, and reads VmRSS (and the VmHWM peak) from /proc/<pid>/status.
Then it declares `--declares` incidents through signed slash commands, waits for their replies,
and reads the figures again. Prints figures; never asserts (the issue sets no target).
"""

from __future__ import annotations

import argparse
import asyncio

import httpx
from _common import BotProcess, print_json, print_machine, seeded_fake, slash


def _mib(kib: int) -> str:
    return f"{kib / 1024:.1f} MiB"


async def main(declares: int, settle: float) -> None:
    print_machine()
    fake = await seeded_fake()
    bot = BotProcess(fake=fake, unpaced=True)  # 100 channels without the 20/min pacing
    try:
        await bot.start()
        await asyncio.sleep(settle)
        idle, idle_peak = bot.status_kib("VmRSS"), bot.status_kib("VmHWM")
        print(f"bot pid {bot.pid}, healthy {bot.boot_seconds:.2f} s after exec")
        print(f"idle:  VmRSS {_mib(idle)}  (peak VmHWM {_mib(idle_peak)})")
        async with httpx.AsyncClient(timeout=60) as client:
            before = len(fake.responses)

            async def declare(n: int) -> None:
                key = f"m{n}"
                body, headers = slash(
                    f"declare P3 Memory {n}", response_url=fake.response_url(key, channel_id="C0GENERAL"), n=n
                )
                response = await client.post(f"{bot.url}/slack/events", content=body.encode(), headers=headers)
                response.raise_for_status()

            for start in range(0, declares, 25):
                await asyncio.gather(*(declare(n) for n in range(start, min(declares, start + 25))))
            for _ in range(1200):
                if len(fake.responses) - before >= declares:
                    break
                await asyncio.sleep(0.05)
        await asyncio.sleep(settle)
        busy, busy_peak = bot.status_kib("VmRSS"), bot.status_kib("VmHWM")
        print(f"after {declares} declares: VmRSS {_mib(busy)}  (peak VmHWM {_mib(busy_peak)})")
        print_json(
            "memory",
            {
                "idle_rss_mib": round(idle / 1024, 1),
                "idle_hwm_mib": round(idle_peak / 1024, 1),
                "after_rss_mib": round(busy / 1024, 1),
                "after_hwm_mib": round(busy_peak / 1024, 1),
                "declares": declares,
            },
        )
    finally:
        bot.stop()
        await fake.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--declares", type=int, default=100)
    parser.add_argument("--settle", type=float, default=3.0)
    args = parser.parse_args()
    asyncio.run(main(args.declares, args.settle))
