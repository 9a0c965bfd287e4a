"""Load generator for ack_latency.py, in its own process so the timing excludes the benchmark's own work.

    python benchmarks/_loadgen.py --host 127.0.0.1 --port 8080 --connections 50

The parent (ack_latency.py) also runs the fake Slack Web API, which is busy serving the bot
during a burst; timing the requests in that process would add its event-loop queueing to every
figure. Here nothing else runs: plain asyncio streams, N keep-alive HTTP/1.1 connections opened
up front, requests serialised before the clock starts.

Protocol (one line each way per round): after opening the connections it prints
`{"ready": N}`. Each line on stdin is the path of a JSON file holding that round's requests,
`[{"body": "...", "headers": {...}}, ...]` (at most N; signed by the parent just before, so the
timestamps are fresh). It writes request i on connection i, all back-to-back without yielding
to the event loop, then reads every response and prints one JSON line:
`{"latencies": [s, ...], "statuses": [...], "spread": s, "errors": [...]}`. A latency runs from
just before the request's write to the end of its response body; `spread` is the time from the
first write to the last. An empty line or EOF on stdin ends it.

Not a benchmark itself (the leading underscore keeps it out of the README table).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import time
from pathlib import Path
from typing import Any


class Connection:
    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def ensure_open(self) -> None:
        """(Re)connect when the server closed this connection while idle (aiohttp's keep-alive is 75 s)."""
        if self.reader is not None and not self.reader.at_eof():
            return
        await self.close()
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(OSError):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def read_response(self) -> tuple[int, bytes, bool]:
        """Status, body and whether the server keeps the connection (it must send Content-Length)."""
        assert self.reader is not None
        head = await self.reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/1."):
            raise RuntimeError(f"not an HTTP/1.x status line: {lines[0]!r}")
        status = int(parts[1])
        headers: dict[str, str] = {}
        for line in lines[1:]:
            if line:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
        if "content-length" not in headers:
            raise RuntimeError(f"response without Content-Length (headers {sorted(headers)})")
        length = int(headers["content-length"])
        body = await self.reader.readexactly(length) if length else b""
        keep = headers.get("connection", "").lower() != "close" and parts[0] == "HTTP/1.1"
        return status, body, keep


def serialise(request: dict[str, Any], *, host: str, port: int, path: str) -> bytes:
    body = request["body"].encode()
    head = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}"]
    head += [f"{name}: {value}" for name, value in request["headers"].items()]
    head += [f"Content-Length: {len(body)}", "Connection: keep-alive", "", ""]
    return "\r\n".join(head).encode("latin-1") + body


async def run_round(connections: list[Connection], payloads: list[bytes]) -> dict[str, Any]:
    used = connections[: len(payloads)]
    for connection in used:
        await connection.ensure_open()
    starts: list[float] = []
    # Back-to-back: no await between the writes, so no response is read (and nothing else runs) meanwhile.
    for connection, payload in zip(used, payloads, strict=True):
        assert connection.writer is not None
        starts.append(time.perf_counter())
        connection.writer.write(payload)

    async def finish(connection: Connection, started: float) -> tuple[float, int, str]:
        assert connection.writer is not None
        await connection.writer.drain()
        status, body, keep = await connection.read_response()
        elapsed = time.perf_counter() - started
        if not keep:
            await connection.close()
        return elapsed, status, body[:200].decode(errors="replace")

    results = await asyncio.gather(*(finish(c, t) for c, t in zip(used, starts, strict=True)), return_exceptions=True)
    latencies: list[float] = []
    statuses: list[int] = []
    errors: list[str] = []
    for connection, result in zip(used, results, strict=True):
        if isinstance(result, BaseException):
            errors.append(f"{type(result).__name__}: {result}")
            await connection.close()
            continue
        elapsed, status, body = result
        latencies.append(elapsed)
        statuses.append(status)
        if status != 200:
            errors.append(f"HTTP {status}: {body}")
    return {"latencies": latencies, "statuses": statuses, "spread": starts[-1] - starts[0], "errors": errors}


async def main(host: str, port: int, path: str, n: int) -> None:
    connections = [Connection(host, port) for _ in range(n)]
    await asyncio.gather(*(c.ensure_open() for c in connections))
    print(json.dumps({"ready": n}), flush=True)
    try:
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).strip()
            if not line:
                break
            requests = json.loads(await asyncio.to_thread(Path(line).read_text))
            if not 1 <= len(requests) <= n:
                raise SystemExit(f"a round needs 1..{n} requests, got {len(requests)}")
            payloads = [serialise(r, host=host, port=port, path=path) for r in requests]
            print(json.dumps(await run_round(connections, payloads)), flush=True)
    finally:
        await asyncio.gather(*(c.close() for c in connections))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--path", default="/slack/events")
    parser.add_argument("--connections", type=int, default=50)
    args = parser.parse_args()
    asyncio.run(main(args.host, args.port, args.path, args.connections))
