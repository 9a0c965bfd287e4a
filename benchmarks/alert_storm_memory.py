"""Peak memory of reading one Alertmanager delivery of about 25 MiB (a storm of ~40,000 alerts):
the bot's stream reader (`bot.alerts.stream`) against reading the body and `json.loads`.

    python benchmarks/alert_storm_memory.py [MiB]

Prints the body size, then per way: wall time (untraced) and peak traced allocation (tracemalloc,
a second run: tracing slows Python several times over).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere, as the other scripts are

from bot.alerts.payloads import parse  # noqa: E402
from bot.alerts.stream import read_notification  # noqa: E402


def storm(target_mib: float) -> bytes:
    """An Alertmanager v4 body of about `target_mib`, its alerts shaped as Alertmanager sends them."""

    def alert(i: int) -> dict[str, Any]:
        return {
            "status": "firing",
            "labels": {
                "alertname": "HighErrorRate",
                "severity": "critical",
                "instance": f"10.0.{i // 250}.{i % 250}:9100",
                "job": "node",
                "pod": f"api-{i:06d}",
                "namespace": "prod",
            },
            "annotations": {
                "summary": "Error rate above 5%",
                "description": "The error rate of the api pod has been above 5% for 5 minutes; runbook "
                "https://runbooks.example.com/high-error-rate",
            },
            "startsAt": "2026-12-05T10:00:00.123456789Z",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": f"http://prometheus:9090/graph?g0.expr=rate%28errors%5B5m%5D%29+%3E+0.05&i={i}",
            "fingerprint": f"{i:016x}",
        }

    size = len(json.dumps(alert(0)))
    count = int(target_mib * 1024 * 1024 / (size + 2))
    return json.dumps(
        {
            "version": "4",
            "groupKey": '{}:{alertname="HighErrorRate"}',
            "status": "firing",
            "receiver": "incident-bot",
            "groupLabels": {"alertname": "HighErrorRate"},
            "commonLabels": {"alertname": "HighErrorRate", "severity": "critical"},
            "commonAnnotations": {},
            "externalURL": "http://alertmanager:9093",
            "truncatedAlerts": 0,
            "alerts": [alert(i) for i in range(count)],
        }
    ).encode()


class Chunks:
    """A request body arriving in 64 KiB chunks, as aiohttp's StreamReader hands it over."""

    def __init__(self, body: bytes) -> None:
        self.body = memoryview(body)
        self.at = 0

    async def read(self, n: int = -1) -> bytes:
        n = len(self.body) - self.at if n < 0 else n
        chunk = bytes(self.body[self.at : self.at + n])
        self.at += len(chunk)
        return chunk


async def streamed(body: bytes) -> int:
    data, overflow = await read_notification(Chunks(body))
    return parse("alertmanager", data, overflow=overflow).firing_total


async def loaded(body: bytes) -> int:
    whole = bytes(body)  # what request.read() holds: a second copy of the body
    return parse("alertmanager", json.loads(whole)).firing_total


def measure(name: str, run: Any, body: bytes) -> None:
    started = time.perf_counter()
    firing = asyncio.run(run(body))
    elapsed = time.perf_counter() - started
    tracemalloc.start()
    asyncio.run(run(body))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(f"{name:>22}: peak {peak / 2**20:6.1f} MiB, {elapsed:5.2f} s, {firing:,} firing")


def main() -> None:
    body = storm(float(sys.argv[1]) if len(sys.argv) > 1 else 25.0)
    print(f"body: {len(body) / 2**20:.1f} MiB")
    measure("stream (the bot)", streamed, body)
    measure("read + json.loads", loaded, body)


if __name__ == "__main__":
    main()
