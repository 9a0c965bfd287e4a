"""Preset senders' deliveries out of order: a retried resolve of a monitor's last outage lands after
its next outage started (the bot answered the first try 503 in a storm, the sender tried again)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alerts import source_bodies as b
from tests.alerts.helpers import action_ids, alert_messages, groups, incident_count, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

TOKEN = "alerts-token-1a2b3c"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
CONFIG: dict[str, Any] = {
    "alerts": {
        "auto_declare": [{"match": {"severity": s}, "severity": "P1"} for s in ("critical", "P1", "error")],
        "sources": {
            "betterstack": {"preset": "betterstack", "severity": "P1"},
            "pingdom": {"preset": "pingdom"},
            "datadog": {"preset": "datadog"},
            "uptimerobot": {"preset": "uptimerobot", "severity": "P1"},
            "sentry": {"preset": "sentry"},
        },
    }
}


@pytest.fixture
async def sbot(fake_slack: FakeSlack, database_url: str, tmp_path: Path) -> AsyncIterator[BotHarness]:
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG, alerts_token=TOKEN
    )
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness


def _ago(minutes: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


def _betterstack(outage: str, *, started: datetime, resolved: datetime | None) -> dict[str, Any]:
    """Better Stack's incident webhook: each outage of the monitor is an incident of its own (`id`)."""
    body = b.betterstack(resolved is not None, incident_id=outage)
    attributes = body["data"]["attributes"]
    attributes["started_at"] = started.isoformat().replace("+00:00", ".000Z")
    attributes["resolved_at"] = resolved.isoformat().replace("+00:00", ".000Z") if resolved else None
    return {"event": "resolved" if resolved else "started", **body}


def _pingdom(outage: str, *, started: datetime, resolved: datetime | None) -> dict[str, Any]:
    """Pingdom's webhook: `state_changed_timestamp` is when the check went DOWN, or back UP."""
    body = b.pingdom("UP" if resolved else "DOWN")
    body["state_changed_timestamp"] = int((resolved or started).timestamp())
    return body


def _datadog(outage: str, *, started: datetime, resolved: datetime | None) -> dict[str, Any]:
    """Datadog's webhook: each notification is an event of its own (`$ID`), `$DATE` when it happened (the
    monitor triggered, or recovered)."""
    body = b.datadog("Recovered" if resolved else "Triggered")
    body["id"] = f"74612324235783457{outage}{'1' if resolved else '0'}"
    body["date"] = str(int((resolved or started).timestamp() * 1000))
    return body


def _uptimerobot(outage: str, *, started: datetime, resolved: datetime | None) -> dict[str, Any]:
    """UptimeRobot's alert contact: `*alertDateTime*` is when the monitor went down, or came back up
    (`*alertDuration*` after it went down)."""
    body = b.uptimerobot("2" if resolved else "1")
    body["alertDateTime"] = str(int((resolved or started).timestamp()))
    body["alertDuration"] = str(int((resolved - started).total_seconds())) if resolved else ""
    return body


def _sentry(outage: str, *, started: datetime, resolved: datetime | None) -> dict[str, Any]:
    """Sentry's `issue` hook: the issue regressed (`unresolved`) with the event seen at `started`, and was
    resolved with that event its last seen."""
    return b.sentry_issue("resolved" if resolved else "unresolved", first_seen=_ago(60 * 24), last_seen=started)


SENDERS: dict[str, Callable[..., dict[str, Any]]] = {
    "betterstack": _betterstack,
    "pingdom": _pingdom,
    "datadog": _datadog,
    "uptimerobot": _uptimerobot,
    "sentry": _sentry,
}
HEADERS = {source: BEARER for source in SENDERS} | {"sentry": {**BEARER, "Sentry-Hook-Resource": "issue"}}


def _offers(bot: BotHarness, channel: str) -> int:
    return sum("alert_resolve_incident" in action_ids(m) for m in bot.fake.messages(channel))


@pytest.mark.parametrize("source", list(SENDERS))
async def test_a_retried_resolve_of_the_last_outage_does_not_clear_the_next(sbot: BotHarness, source: str) -> None:
    """Down at 08:30, up at 08:40, down again at 08:55; the 08:40 resolve arrives again after that. It said
    the monitor was up while it was down: the card turned green and the responders were offered to resolve."""
    body, headers = SENDERS[source], HEADERS[source]
    first = dict(started=_ago(30))
    for delivery in (body("1", **first, resolved=None), body("1", **first, resolved=_ago(20))):
        response = await send(sbot, delivery, source=source, headers=headers)
        assert response.status_code == 200, response.text
    channel = (await sbot.incident(1)).channel_id or ""
    assert _offers(sbot, channel) == 1
    await send(sbot, body("2", started=_ago(5), resolved=None), source=source, headers=headers)

    retried = await send(sbot, body("1", **first, resolved=_ago(20)), source=source, headers=headers)
    assert retried.status_code == 200, retried.text
    [group] = await groups(sbot)
    assert group.status == "firing" and not group.resolve_offer_pending
    assert _offers(sbot, channel) == 1
    assert "RESOLVED" not in rendered(alert_messages(sbot)[0]).upper()
    assert (await sbot.incident(1)).is_open and await incident_count(sbot) == 1

    # The resolve of the outage that is down now still clears it.
    await send(sbot, body("2", started=_ago(5), resolved=_ago(1)), source=source, headers=headers)
    [group] = await groups(sbot)
    assert group.status == "resolved" and _offers(sbot, channel) == 2
