"""Alert payloads that overflow Python's limits are the sender's mistake: 400 with the reason, never a 500."""

from __future__ import annotations

from typing import Any

import pytest

from tests.alerts import payloads as p
from tests.alerts.helpers import alert_messages, groups, send
from tests.harness import BotHarness


def _nested(depth: int) -> bytes:
    labels = '{"alertname": "Deep"}'
    return (
        '{"version": "4", "groupKey": "k", "status": "firing", "alerts": [{"labels": '
        + labels
        + ', "annotations": {}, "extra": '
        + "[" * depth
        + "]" * depth
        + "}]}"
    ).encode()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (p.alertmanager([p.am_alert(starts_at="9999-12-31T23:59:59-05:00")]), "too far in the future"),
        (p.alertmanager([p.am_alert(starts_at="9999-12-31T23:59:59Z")]), "too far in the future"),
        (p.alertmanager([p.am_alert(ends_at="9999-12-31T20:00:00+14:00")]), "too far in the future"),
        (p.alertmanager([p.am_alert(starts_at="10000-01-01T00:00:00Z")]), "is not an RFC 3339 time"),
        (_nested(40), "nested deeper than 32 levels"),
        (_nested(100_000), "nested deeper than 32 levels"),
    ],
    ids=["9999 behind UTC", "9999 at UTC", "9999 ahead of UTC", "year 10000", "40 deep", "100000 deep"],
)
async def test_overflowing_payloads_get_400(bot: BotHarness, body: Any, reason: str) -> None:
    response = await send(bot, body)
    assert response.status_code == 400, response.text
    assert reason in response.json()["error"]
    assert await groups(bot) == []
    assert alert_messages(bot) == []


async def test_real_senders_nest_well_within_the_limit(bot: BotHarness) -> None:
    from bot.alerts.payloads import MAX_DEPTH, _depth

    body = p.alertmanager([p.am_alert()])
    assert _depth(body) <= 5 < MAX_DEPTH
    assert (await send(bot, body)).status_code == 200
