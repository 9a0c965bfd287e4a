"""A captured Sentry delivery sent again: Sentry signs the body only (`Sentry-Hook-Timestamp` is not signed),
so whoever holds one can send it at any time, with a fresh timestamp, and it verifies."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import select

from bot.timeline import deliveries
from bot.timeline.models import ProcessedRequest
from tests.alerts import source_bodies as b
from tests.alerts.helpers import action_ids, alert_messages, groups, incident_count, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

CONFIG: dict[str, Any] = {
    "alerts": {
        "auto_declare": [{"match": {"severity": "error"}, "severity": "P2"}],
        "sources": {"sentry": {"preset": "sentry", "client_secret_env": "TEST_SENTRY_SECRET"}},
    }
}


@pytest.fixture
async def sbot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("TEST_SENTRY_SECRET", b.SENTRY_SECRET)
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG)
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness


def _ago(minutes: int) -> datetime:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).replace(microsecond=0)


def _signed(body: dict[str, Any], resource: str) -> tuple[bytes, dict[str, str]]:
    """The delivery as captured: the body and its signature (a replay sends both again)."""
    raw = b.encoded(body)
    return raw, b.sentry_headers(raw, resource)


async def _deliver(bot: BotHarness, delivery: tuple[bytes, dict[str, str]]) -> None:
    raw, headers = delivery
    response = await send(bot, raw, source="sentry", headers=b.sentry_headers(raw, headers["Sentry-Hook-Resource"]))
    assert response.status_code == 200, response.text


def _offers(bot: BotHarness, channel: str) -> int:
    return sum("alert_resolve_incident" in action_ids(m) for m in bot.fake.messages(channel))


async def test_a_replayed_resolve_of_an_earlier_issue_state_does_not_clear_its_regression(sbot: BotHarness) -> None:
    """Resolved at 08:40 (last seen 08:35), regressed at 08:55; the captured resolve is sent again. It
    verified, and cleared the issue that had come back: the card went green and the channel was offered
    to resolve the incident."""
    created = _signed(b.sentry_issue("created", first_seen=_ago(40)), "issue")
    resolved = _signed(b.sentry_issue("resolved", first_seen=_ago(40), last_seen=_ago(35)), "issue")
    regressed = _signed(b.sentry_issue("unresolved", first_seen=_ago(40), last_seen=_ago(5)), "issue")
    for delivery in (created, resolved, regressed):
        await _deliver(sbot, delivery)
    channel = (await sbot.incident(1)).channel_id or ""
    assert _offers(sbot, channel) == 1

    await _deliver(sbot, resolved)
    [group] = await groups(sbot)
    assert group.status == "firing" and not group.resolve_offer_pending
    assert _offers(sbot, channel) == 1 and (await sbot.incident(1)).is_open

    # The issue's own resolve, last seen after it regressed, still clears it.
    await _deliver(sbot, _signed(b.sentry_issue("resolved", first_seen=_ago(40), last_seen=_ago(4)), "issue"))
    assert (await groups(sbot))[0].status == "resolved" and _offers(sbot, channel) == 2


async def test_an_exact_replay_of_a_delivery_already_processed_changes_nothing(sbot: BotHarness) -> None:
    """The event alert and the resolve, each sent twice in a row: one incident, one card, one offer, and the
    incident's timeline says each once."""
    fired = _signed(b.sentry_event_alert(), "event_alert")
    await _deliver(sbot, fired)
    incident = await sbot.incident(1)
    channel = incident.channel_id or ""
    before = len(await sbot.timeline(1))
    await _deliver(sbot, fired)
    assert len(await sbot.timeline(1)) == before

    resolved = _signed(b.sentry_issue("resolved"), "issue")
    await _deliver(sbot, resolved)
    after_resolve = len(await sbot.timeline(1))
    await _deliver(sbot, resolved)

    assert len(await sbot.timeline(1)) == after_resolve
    assert _offers(sbot, channel) == 1
    assert await incident_count(sbot) == 1 and len(alert_messages(sbot)) == 1


async def test_a_replayed_event_alert_after_its_issue_resolved_opens_nothing(sbot: BotHarness) -> None:
    """The captured event alert, sent again after the issue was resolved: it verified, and opened a new alert,
    declared a second incident and paged, for an error that was over. The issue's next real event still does."""
    fired = _signed(b.sentry_event_alert(), "event_alert")
    await _deliver(sbot, fired)
    await _deliver(sbot, _signed(b.sentry_issue("resolved"), "issue"))
    async with sbot.deps.db.session() as session:  # Slack's claims pruned, as its listener does: not these
        later = datetime.now(UTC) + timedelta(hours=1)
        await deliveries.prune_processed(
            session, events_before=later, requests_before=later, alerts_before=later - deliveries.ALERT_CLAIM_RETENTION
        )

    await _deliver(sbot, fired)
    [group] = await groups(sbot)
    assert group.status == "resolved" and await incident_count(sbot) == 1
    assert len(alert_messages(sbot)) == 1

    again = b.sentry_event_alert()
    again["data"]["event"]["event_id"] = "0c7b3d1f9e2a4b6c8d0e1f2a3b4c5d6e"
    again["data"]["event"]["datetime"] = _ago(1).isoformat().replace("+00:00", ".000000Z")
    await _deliver(sbot, _signed(again, "event_alert"))
    [group] = await groups(sbot)
    assert group.status == "firing"


async def test_a_claim_goes_once_its_retention_is_over(sbot: BotHarness) -> None:
    """Claims are kept `ALERT_CLAIM_RETENTION`, then pruned with Slack's, so the table does not grow for ever."""
    await _deliver(sbot, _signed(b.sentry_event_alert(), "event_alert"))

    async def claims(*, pruned_at: datetime) -> list[str]:
        async with sbot.deps.db.session() as session:
            await deliveries.prune_processed(
                session,
                events_before=pruned_at,
                requests_before=pruned_at,
                alerts_before=pruned_at - deliveries.ALERT_CLAIM_RETENTION,
            )
            rows = (await session.exec(select(ProcessedRequest.signature))).all()
        return [r for r in rows if r.startswith(deliveries.ALERT_CLAIM)]

    now = datetime.now(UTC)
    assert len(await claims(pruned_at=now + deliveries.ALERT_CLAIM_RETENTION - timedelta(minutes=1))) == 1
    assert await claims(pruned_at=now + deliveries.ALERT_CLAIM_RETENTION + timedelta(minutes=1)) == []


async def test_a_delivery_whose_write_failed_is_taken_when_sent_again(sbot: BotHarness) -> None:
    """The claim that makes a delivery act once is written with the alert: a 503 leaves the sender's retry in."""
    from sqlalchemy import text

    from bot.alerts.models import AlertInstance

    raw, headers = _signed(b.sentry_event_alert(), "event_alert")
    async with sbot.deps.db.engine.begin() as conn:
        await conn.execute(text("DROP TABLE alert_instances"))
    failed = await send(sbot, raw, source="sentry", headers=headers)
    assert failed.status_code == 503
    async with sbot.deps.db.engine.begin() as conn:
        await conn.run_sync(AlertInstance.metadata.tables["alert_instances"].create)

    await _deliver(sbot, (raw, headers))
    [group] = await groups(sbot)
    assert group.status == "firing" and await incident_count(sbot) == 1
