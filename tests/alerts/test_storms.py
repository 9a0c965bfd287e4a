"""Alert storms: a delivery of any size a real sender produces is stored and answered 2xx.

Alertmanager never retries a 4xx, so refusing a big group (it was 400 over 500 alerts, 413 over
2 MiB) meant the biggest outage of the year never reached Slack. The group, its counts and the
first `KEPT_ALERTS_PER_DELIVERY` alerts are kept in full; the rest are counted as truncated.
"""

from __future__ import annotations

import asyncio
import json
import tracemalloc
from typing import Any

import pytest
from sqlalchemy import func
from sqlmodel import select

from bot.alerts import limits
from bot.alerts.models import AlertInstance
from bot.alerts.payloads import PayloadError, parse
from bot.alerts.stream import read_notification
from tests.alerts import payloads as p
from tests.alerts.helpers import alert_messages, groups, rendered, send
from tests.harness import BotHarness


def storm(count: int, *, resolved_every: int = 0, pad: int = 0) -> dict[str, Any]:
    """`count` alerts in one Alertmanager group (every `resolved_every`-th resolved)."""
    base = p.am_alert(severity="warning", description="x" * pad)
    alerts = []
    for i in range(count):
        alert = json.loads(json.dumps(base))
        alert["labels"]["instance"] = f"api-{i}:9090"
        alert["fingerprint"] = f"{i:016x}"
        if resolved_every and i % resolved_every == resolved_every - 1:
            alert["status"] = "resolved"
        alerts.append(alert)
    body = p.alertmanager(alerts[:1])
    body["alerts"] = alerts
    return body


class Chunks:
    """A body arriving in chunks, as aiohttp's StreamReader hands it over."""

    def __init__(self, body: bytes, size: int = 65536) -> None:
        self.body, self.at, self.size = body, 0, size

    async def read(self, n: int = -1) -> bytes:
        n = min(self.size, len(self.body) - self.at if n < 0 else n)
        chunk = self.body[self.at : self.at + n]
        self.at += len(chunk)
        return chunk


async def instance_count(bot: BotHarness) -> int:
    async with bot.deps.db.session() as session:
        return int((await session.exec(select(func.count()).select_from(AlertInstance))).one())


async def test_a_storm_of_3000_alerts_is_stored_counted_and_said_in_slack(bot: BotHarness) -> None:
    response = await send(bot, storm(3000))

    assert response.status_code == 200, response.text
    [group] = await groups(bot)
    assert group.firing_total == 3000
    assert group.truncated == 3000 - limits.KEPT_ALERTS_PER_DELIVERY
    assert await instance_count(bot) == limits.KEPT_ALERTS_PER_DELIVERY
    [message] = alert_messages(bot)
    assert "FIRING (3,000)" in rendered(message) and "3,000 alerts firing" in rendered(message)
    assert "2,500 counted" in rendered(message)


async def test_the_firing_count_leaves_out_the_resolved_ones_beyond_the_kept(bot: BotHarness) -> None:
    response = await send(bot, storm(1000, resolved_every=4))  # 250 resolved, 750 firing

    assert response.status_code == 200, response.text
    [group] = await groups(bot)
    assert (group.firing_total, group.truncated) == (750, 500)
    assert "750 alerts firing" in rendered(alert_messages(bot)[0])


async def test_a_25_mib_delivery_is_accepted(bot: BotHarness) -> None:
    body = json.dumps(storm(9000, pad=2800)).encode()
    assert len(body) >= 25 * 1024 * 1024

    response = await send(bot, body)

    assert response.status_code == 200, response.text
    [group] = await groups(bot)
    assert group.firing_total == 9000 and group.truncated == 9000 - limits.KEPT_ALERTS_PER_DELIVERY


async def test_a_body_beyond_the_limit_is_413_and_stores_nothing(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits, "MAX_ALERT_BODY_BYTES", 256 * 1024)
    response = await send(bot, storm(1000))
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    assert await groups(bot) == []


async def test_a_malformed_alert_beyond_the_kept_ones_is_still_a_400(bot: BotHarness) -> None:
    body = storm(600)
    body["alerts"][550] = "not an alert"
    response = await send(bot, body)
    assert response.status_code == 400 and "alerts[550]: expected an object" in response.json()["error"]
    assert await groups(bot) == []


@pytest.mark.parametrize("chunk", [997, 65536])  # a chunk ends inside tokens and strings
async def test_the_stream_reader_reads_what_json_loads_reads(chunk: int) -> None:
    body = storm(520, resolved_every=3)
    body["extra"] = {"nested": [1, 2.5, None, True, {"a": "é"}]}
    raw = json.dumps(body).encode()

    data, overflow = await read_notification(Chunks(raw, chunk))

    assert data == {**body, "alerts": body["alerts"][: limits.KEPT_ALERTS_PER_DELIVERY]}
    assert (overflow.dropped, overflow.firing, overflow.resolved) == (20, 13, 7)
    streamed, whole = parse("alertmanager", data, overflow=overflow), parse("alertmanager", body)
    assert streamed == whole


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"", "the body is empty"),
        (b"  \n", "the body is empty"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b'{"alerts": [1', "not JSON"),
    ],
)
async def test_the_stream_reader_refuses_what_is_not_a_json_object(raw: bytes, reason: str) -> None:
    with pytest.raises(PayloadError, match=reason):
        await read_notification(Chunks(raw))


async def test_reading_a_25_mib_storm_keeps_memory_small() -> None:
    """Peak allocation while parsing: `json.loads` of the same body peaks near 100 MiB (the
    benchmark `benchmarks/alert_storm_memory.py` prints both)."""
    raw = json.dumps(storm(9000, pad=2800)).encode()
    tracemalloc.start()
    try:
        data, overflow = await read_notification(Chunks(raw))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert overflow.dropped == 9000 - limits.KEPT_ALERTS_PER_DELIVERY
    assert peak < 8 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


async def test_a_big_delivery_does_not_hold_up_the_event_loop() -> None:
    """The reader yields between chunks: other work (a page, a Slack ack) runs while it parses."""
    raw = json.dumps(storm(3000)).encode()
    ticks = 0

    async def other_work() -> None:
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    beside = asyncio.create_task(other_work())
    try:
        await read_notification(Chunks(raw))
    finally:
        beside.cancel()
    assert ticks >= len(raw) // 65536


async def test_a_chunked_body_beyond_the_limit_is_413_too(bot: BotHarness, monkeypatch: pytest.MonkeyPatch) -> None:
    """Without a Content-Length (chunked), the limit is enforced while reading."""
    monkeypatch.setattr(limits, "MAX_ALERT_BODY_BYTES", 256 * 1024)
    raw = json.dumps(storm(1000)).encode()

    async def chunks() -> Any:
        for at in range(0, len(raw), 65536):
            yield raw[at : at + 65536]

    response = await bot.http.post(
        f"{bot.url}/alerts/alertmanager", content=chunks(), headers={"Content-Type": "application/json"}
    )
    await bot.settle()
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    assert await groups(bot) == []
