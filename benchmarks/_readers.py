"""Status page readers for status_page_readers.py, in their own process (timing excludes the fake Slack's work).

    python benchmarks/_readers.py --port 8080 --readers 1000 --mode steady --seconds 15 --think 1.0

Opens `--readers` keep-alive HTTP/1.1 connections up front, prints `{"ready": N}`, waits for a line
on stdin, then:

- `steady`: every reader reads in a loop, alternating `/status-page/api/v2/summary.json` and
  `/status-page` (as a browser and a tool polling the JSON would), `--think` seconds apart (jittered
  ±50 %, first read at a random moment of the first interval), for `--seconds`;
- `burst`: every reader sends one request at the same instant (a link shared in an outage), `--rounds`
  times, a second apart.

Prints one JSON line: `{"latencies": [s, ...], "statuses": {...}, "errors": [...], "requests": n}`. A
latency runs from just before the request's write to the end of its body. `Accept-Encoding: gzip`
is sent, as browsers do. Not a benchmark itself.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections import Counter
from typing import Any

PATHS = ("/status-page/api/v2/summary.json", "/status-page")


class Reader:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        if self.reader is None or self.reader.at_eof():
            self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def get(self, path: str) -> tuple[float, int]:
        await self.open()
        assert self.reader is not None and self.writer is not None
        request = f"GET {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAccept-Encoding: gzip\r\n\r\n"
        started = time.perf_counter()
        self.writer.write(request.encode())
        await self.writer.drain()
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length = 0
        close = False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            if name.strip().lower() == "content-length":
                length = int(value.strip())
            if name.strip().lower() == "connection" and value.strip().lower() == "close":
                close = True
        if length:
            await self.reader.readexactly(length)
        elapsed = time.perf_counter() - started
        if close:
            self.writer.close()
            self.reader = self.writer = None
        return elapsed, status

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def steady(readers: list[Reader], seconds: float, think: float) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    deadline = time.perf_counter() + seconds

    async def loop(index: int, reader: Reader) -> None:
        await asyncio.sleep(random.uniform(0, think))
        n = index
        while time.perf_counter() < deadline:
            try:
                elapsed, status = await reader.get(PATHS[n % 2])
                latencies.append(elapsed)
                statuses[status] += 1
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append(f"{type(exc).__name__}: {exc}"[:200])
                reader.reader = reader.writer = None
            n += 1
            await asyncio.sleep(think * random.uniform(0.5, 1.5))

    await asyncio.gather(*(loop(i, r) for i, r in enumerate(readers)))
    return {"latencies": latencies, "statuses": dict(statuses), "errors": errors[:20], "requests": len(latencies)}


async def burst(readers: list[Reader], rounds: int) -> dict[str, Any]:
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: list[str] = []
    for _ in range(rounds):
        results = await asyncio.gather(*(r.get(PATHS[i % 2]) for i, r in enumerate(readers)), return_exceptions=True)
        for result in results:
            if isinstance(result, BaseException):
                errors.append(f"{type(result).__name__}: {result}"[:200])
                continue
            latencies.append(result[0])
            statuses[result[1]] += 1
        await asyncio.sleep(1.0)
    return {"latencies": latencies, "statuses": dict(statuses), "errors": errors[:20], "requests": len(latencies)}


async def main(args: argparse.Namespace) -> None:
    readers = [Reader(args.host, args.port) for _ in range(args.readers)]
    for start in range(0, len(readers), 100):  # not 1,000 SYNs at once: the listen backlog is finite
        await asyncio.gather(*(r.open() for r in readers[start : start + 100]))
    print(json.dumps({"ready": len(readers)}), flush=True)
    await asyncio.to_thread(sys.stdin.readline)
    if args.mode == "steady":
        result = await steady(readers, args.seconds, args.think)
    else:
        result = await burst(readers, args.rounds)
    print(json.dumps(result), flush=True)
    await asyncio.gather(*(r.close() for r in readers))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--readers", type=int, default=1000)
    parser.add_argument("--mode", choices=["steady", "burst"], default="steady")
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--think", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    asyncio.run(main(parser.parse_args()))
