"""/status over 50 local health endpoints: 49 answer in 200 ms, one never answers.

    .venv/bin/python benchmarks/status_fanout.py [--services 50] [--delay 0.2] [--timeout 1]

Each endpoint is its own aiohttp server on its own loopback port (50 services, 50 origins), in
this process. Every service has `timeout: --timeout` in bot.yml. Three figures:

1. `bot.health.checker.check_all` (what /status runs) on an httpx client built as the bot builds
   its shared one: total time for all 50, against the target of <= 1.1 x the per-check timeout
   (one hanging endpoint costs at most its timeout, never the sum).
2. The same checks one after another (`check` in a loop), for the ratio sequential / concurrent.
3. The real `/status` slash command through the app (tests.harness.start_bot, signed request over
   loopback, fake Slack): from the request to the reply arriving at the response_url.

Prints figures; never asserts.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

import httpx
from _common import print_json, print_machine, seeded_fake
from aiohttp import web

from bot.config import Service
from bot.health import checker
from tests import slack_requests as req
from tests.conftest import make_settings
from tests.harness import SECRET, start_bot


async def endpoints(count: int, delay: float) -> tuple[list[str], list[web.AppRunner]]:
    """`count` servers; the last one never answers."""
    hang = asyncio.Event()

    async def healthy(_: web.Request) -> web.Response:
        await asyncio.sleep(delay)
        return web.json_response({"status": "ok"})

    async def never(_: web.Request) -> web.Response:
        await hang.wait()
        return web.json_response({"status": "ok"})

    urls, runners = [], []
    for n in range(count):
        app = web.Application()
        app.router.add_get("/health", never if n == count - 1 else healthy)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        urls.append(f"http://127.0.0.1:{port}/health")
        runners.append(runner)
    return urls, runners


async def main(count: int, delay: float, per_check: float) -> None:
    print_machine()
    urls, runners = await endpoints(count, delay)
    raw = {f"svc{n:02d}": {"health_url": url, "timeout": f"{per_check:g}s"} for n, url in enumerate(urls)}
    services = {name: Service.model_validate(value) for name, value in raw.items()}
    try:
        # As bot/wiring.py builds the shared client.
        async with httpx.AsyncClient(timeout=httpx.Timeout(10.0), follow_redirects=False) as http:
            await checker.check_all(http, services)  # warm-up: connections, imports
            started = time.perf_counter()
            results = await checker.check_all(http, services)
            concurrent = time.perf_counter() - started
            started = time.perf_counter()
            for name, service in services.items():
                await checker.check(http, name=name, service=service)
            sequential = time.perf_counter() - started
        states: dict[str, int] = {}
        for result in results:
            states[result.state.value] = states.get(result.state.value, 0) + 1
        print(
            f"{count} services ({count - 1} answer after {delay * 1000:.0f} ms, 1 never), timeout {per_check:g} s each"
        )
        print(f"  results: {states}")
        ratio = concurrent / per_check
        print(
            f"  check_all (concurrent): {concurrent:.3f} s = {ratio:.2f} x the per-check timeout "
            f"(target <= 1.1: {'met' if ratio <= 1.1 else 'MISSED'})"
        )
        print(
            f"  one after another: {sequential:.2f} s; concurrent is {sequential / concurrent:.1f}x faster "
            f"({concurrent / sequential:.3f} of the sequential time)"
        )

        fake = await seeded_fake()
        with tempfile.TemporaryDirectory(prefix="bench-status-") as tmp:
            settings = make_settings(
                fake=fake,
                database_url=f"sqlite:///{Path(tmp) / 'bot.db'}",
                tmp_path=Path(tmp),
                config={"services": raw},
            )
            bot, stop = await start_bot(fake=fake, settings=settings)
            try:
                timings = []
                for n in range(3):
                    before = len(fake.responses)
                    body, headers = req.slash_command(
                        "/status",
                        "",
                        secret=SECRET,
                        response_url=fake.response_url(f"st{n}", channel_id="C0GENERAL"),
                        trigger_id=f"st{n}",
                    )
                    started = time.perf_counter()
                    response = await bot.post(body, headers)
                    ack = time.perf_counter() - started
                    while len(fake.responses) == before and time.perf_counter() - started < 30:  # noqa: ASYNC110
                        await asyncio.sleep(0.005)
                    timings.append((ack, time.perf_counter() - started, response.status_code))
                    await bot.settle()
            finally:
                await stop()
                await fake.stop()
        for n, (ack, done, status) in enumerate(timings):
            label = "warm-up" if n == 0 else f"run {n}"
            print(
                f"  /status through the app ({label}): HTTP {status} ack {ack * 1000:.0f} ms, reply after {done:.3f} s"
            )
        best = min(done for _, done, _ in timings[1:])
        print_json(
            "status_fanout",
            {
                "services": count,
                "timeout_s": per_check,
                "check_all_s": round(concurrent, 3),
                "ratio_to_timeout": round(ratio, 3),
                "sequential_s": round(sequential, 2),
                "slash_status_reply_s": round(best, 3),
            },
        )
    finally:
        for runner in runners:
            await runner.cleanup()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--services", type=int, default=50)
    parser.add_argument("--delay", type=float, default=0.2)
    parser.add_argument("--timeout", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.services, args.delay, args.timeout))
