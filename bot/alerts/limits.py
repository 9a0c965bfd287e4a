"""How much one alert delivery may carry: the one place every `/alerts/*` endpoint takes it from.

Alertmanager has no size limit by default (`max_alerts: 0`) and never retries a 4xx ("notify retry
canceled due to unrecoverable error"), so refusing a big delivery loses the biggest outage of the
year. The endpoints therefore accept bodies up to `MAX_ALERT_BODY_BYTES`, keep the group, its
counts and the first `KEPT_ALERTS_PER_DELIVERY` alerts in full, and count the rest as truncated.
Only a malformed body gets a 4xx; one larger than any real sender produces gets 413.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Protocol

# 25 MiB is what a storm of ~40,000 Alertmanager alerts weighs; room above it for fatter labels.
MAX_ALERT_BODY_BYTES = 32 * 1024 * 1024
# One preset or `map:` sender's delivery is one alert, read whole: the largest real one, a Sentry event alert with
# its stack traces and breadcrumbs, is far below this (and can pass the server's 2 MiB request limit).
MAX_SOURCE_BODY_BYTES = 8 * 1024 * 1024
# Alerts kept in full (labels, annotations, times) per delivery; the rest are only counted.
KEPT_ALERTS_PER_DELIVERY = 500
READ_CHUNK_BYTES = 64 * 1024


class BodyTooLarge(Exception):
    """The body is larger than `MAX_ALERT_BODY_BYTES` (answered 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"the body is larger than {limit // (1024 * 1024)} MiB")
        self.limit = limit


@dataclass
class Overflow:
    """The alerts of a delivery beyond `KEPT_ALERTS_PER_DELIVERY`: counted by status, not kept."""

    dropped: int = 0
    firing: int = 0
    resolved: int = 0  # the rest say no status: they take the notification's

    def count(self, status: object) -> None:
        self.dropped += 1
        if isinstance(status, str) and status.strip().lower() == "firing":
            self.firing += 1
        elif isinstance(status, str) and status.strip().lower() == "resolved":
            self.resolved += 1


class ChunkSource(Protocol):
    async def read(self, n: int = -1) -> bytes: ...


class LimitedReader:
    """Reads a request body in chunks, refusing more than `limit` bytes, and lets the event loop
    serve others between chunks (a 25 MiB body must not hold up pages and Slack acks)."""

    def __init__(self, source: ChunkSource, *, limit: int = MAX_ALERT_BODY_BYTES) -> None:
        self.source = source
        self.limit = limit
        self.size = 0
        self.blank = True  # nothing but whitespace so far

    async def read(self, n: int = READ_CHUNK_BYTES) -> bytes:
        if n == 0:  # ijson's probe for bytes or text: nothing may be consumed
            return b""
        chunk = await self.source.read(min(n if n > 0 else READ_CHUNK_BYTES, READ_CHUNK_BYTES))
        self.size += len(chunk)
        if self.size > self.limit:
            raise BodyTooLarge(self.limit)
        if self.blank and chunk.strip():
            self.blank = False
        await asyncio.sleep(0)
        return chunk
