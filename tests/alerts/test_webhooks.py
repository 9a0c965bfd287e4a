"""Alertmanager and Grafana webhooks through the real app, against the fake Slack."""

from __future__ import annotations

import base64
from typing import Any

import pytest
from sqlmodel import select

from bot.alerts.models import AlertGroup, AlertInstance
from tests.alerts import payloads as p
from tests.alerts.helpers import API, action_ids, alert_messages, groups, incident_count, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, start_bot


async def test_firing_group_is_posted_with_labels_summary_and_declare_button(bot: BotHarness) -> None:
    body = p.alertmanager([p.am_alert(severity="critical", service="api")])
    response = await send(bot, body)
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"

    [message] = alert_messages(bot)
    text = rendered(message)
    assert "FIRING" in text and "HighErrorRate" in text
    assert "Checkout error rate above 5%" in text
    assert "`severity=critical`" in text and "`service=api`" in text
    assert action_ids(message) == ["alert_declare"]
    assert "Declare proposes: P1" in text  # severity=critical → P1
    assert await incident_count(bot) == 0
    [group] = await groups(bot)
    assert group.status == "firing" and group.notifications == 1 and not group.pending
    assert group.message_ts == message.ts


async def test_credentials_in_a_senders_urls_are_never_stored_or_shown(bot: BotHarness) -> None:
    """An Alertmanager behind basic auth names itself (and its alerts' sources) with `user:password@`."""
    alerts = [p.am_alert(severity="critical", service="api"), p.am_alert(service="web", fingerprint="f2")]
    alerts[0]["generatorURL"] = "http://prom:s3cr3t@prometheus.example.com:9090/graph?g0.expr=up"
    body = p.alertmanager(alerts)
    body["externalURL"] = "https://admin:hunter2@alertmanager.example.com:9093/"
    assert (await send(bot, body)).status_code == 200
    [message] = alert_messages(bot)
    shown = str(message.blocks) + message.text
    assert "s3cr3t" not in shown and "hunter2" not in shown
    assert "<http://prometheus.example.com:9090/graph?g0.expr=up|source>" in shown  # the links themselves are kept
    assert "<https://alertmanager.example.com:9093/|open in Alertmanager>" in shown
    async with bot.deps.db.session() as session:
        stored = [*(await session.exec(select(AlertInstance))).all(), *(await session.exec(select(AlertGroup))).all()]
    assert stored and not any("s3cr3t" in str(row) or "hunter2" in str(row) for row in stored)


@pytest.mark.parametrize("bot_config", [{"services": API}])
async def test_service_label_is_proposed_only_when_it_names_a_configured_service(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(service="api", severity="warning")], group_key="g-api"))
    await send(bot, p.alertmanager([p.am_alert("Other", service="billing")], group_key="g-billing"))
    first, second = await groups(bot)
    assert first.proposed_service == "api" and first.proposed_severity == "P3"
    assert second.proposed_service is None and second.proposed_severity == "P2"


async def test_repeated_notification_updates_the_same_message(bot: BotHarness) -> None:
    body = p.alertmanager([p.am_alert(severity="warning")])
    await send(bot, body)
    await send(bot, body)
    await send(bot, body)
    [message] = alert_messages(bot)
    assert message.edited
    assert "3 notifications" in rendered(message)
    [group] = await groups(bot)
    assert group.notifications == 3
    assert len(bot.fake.calls_to("chat.postMessage")) == 1
    assert len(bot.fake.calls_to("chat.update")) == 2


async def test_grouped_alerts_share_one_message_and_a_new_member_updates_it(bot: BotHarness) -> None:
    a1 = p.am_alert(instance="api-1:9090", severity="warning")
    a2 = p.am_alert(instance="api-2:9090", severity="warning")
    a3 = p.am_alert(instance="api-3:9090", severity="warning")
    await send(bot, p.alertmanager([a1, a2]))
    [message] = alert_messages(bot)
    assert "FIRING (2)" in rendered(message)
    assert "api-1:9090" in rendered(message) and "api-2:9090" in rendered(message)
    await send(bot, p.alertmanager([a1, a2, a3]))
    [message] = alert_messages(bot)
    assert "FIRING (3)" in rendered(message) and "api-3:9090" in rendered(message)
    async with bot.deps.db.session() as session:
        from sqlmodel import select

        rows = (await session.exec(select(AlertInstance))).all()
    assert sorted(r.labels["instance"] for r in rows) == ["api-1:9090", "api-2:9090", "api-3:9090"]


async def test_resolved_without_incident_marks_the_message_resolved(bot: BotHarness) -> None:
    firing = p.am_alert(severity="warning")
    await send(bot, p.alertmanager([firing]))
    resolved = dict(firing, status="resolved", endsAt="2026-11-20T09:10:00.5Z")
    await send(bot, p.alertmanager([resolved]))
    [message] = alert_messages(bot)
    assert "RESOLVED" in rendered(message)
    assert action_ids(message) == []  # nothing to declare any more
    [group] = await groups(bot)
    assert group.status == "resolved" and group.resolved_at is not None


async def test_a_group_that_fires_again_after_resolving_gets_a_new_message(bot: BotHarness) -> None:
    firing = p.am_alert(severity="warning")
    await send(bot, p.alertmanager([firing]))
    await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]))
    await send(bot, p.alertmanager([dict(firing, startsAt="2026-11-20T10:00:00Z")]))
    first, second = alert_messages(bot)
    assert "RESOLVED" in rendered(first)
    assert "FIRING" in rendered(second) and action_ids(second) == ["alert_declare"]
    [group] = await groups(bot)
    assert group.episode == 2 and group.notifications == 1


async def test_grafana_payload_is_accepted_and_posted(bot: BotHarness) -> None:
    response = await send(bot, p.grafana(), source="grafana")
    assert response.status_code == 200, response.text
    [message] = alert_messages(bot)
    text = rendered(message)
    assert "Grafana" in text
    assert "High memory usage" in text and "High CPU usage" in text
    assert "`team=blue`" in text
    await send(bot, p.grafana(status="resolved"), source="grafana")
    [message] = alert_messages(bot)
    assert "RESOLVED" in rendered(message)
    [group] = await groups(bot)
    assert group.source == "grafana" and group.status == "resolved"


async def test_the_same_group_key_from_two_sources_is_two_groups(bot: BotHarness) -> None:
    body = p.alertmanager([p.am_alert(severity="warning")], group_key="{}:{}")
    await send(bot, body)
    await send(bot, p.grafana(), source="grafana")
    assert [g.source for g in await groups(bot)] == ["alertmanager", "grafana"]
    assert len(alert_messages(bot)) == 2


async def test_the_same_grafana_group_key_from_two_orgs_is_two_groups(bot: BotHarness) -> None:
    """Grafana's group key names no organisation: two orgs' alerts shared one group and one message."""
    await send(bot, p.grafana(org_id=1), source="grafana")
    await send(bot, p.grafana(org_id=2), source="grafana")
    await send(bot, p.grafana(org_id=2, status="resolved"), source="grafana")

    found = await groups(bot)
    assert len(found) == 2 and len(alert_messages(bot)) == 2
    assert sorted(g.status for g in found) == ["firing", "resolved"]  # org 2's resolve left org 1 firing


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"", "the body is empty"),
        (b"{not json", "not JSON"),
        (b"[1, 2]", "must be a JSON object"),
        ({"version": "4", "status": "firing", "alerts": []}, "groupKey is missing"),
        ({"version": "4", "groupKey": "k", "status": "firing", "alerts": []}, "alerts is empty"),
        ({"version": "4", "groupKey": "k", "status": "firing", "alerts": {"a": 1}}, "alerts: expected a list"),
        (
            {"version": "4", "groupKey": "k", "status": "burning", "alerts": [{}]},
            "status: expected 'firing' or 'resolved'",
        ),
        ({"version": "3", "groupKey": "k", "status": "firing", "alerts": [{}]}, "version '3' is not supported"),
        (
            {"version": "4", "groupKey": "k", "status": "firing", "alerts": [{"status": "firing"}]},
            "alerts[0].labels is missing",
        ),
        (
            {"version": "4", "groupKey": "k", "status": "firing", "alerts": [{"labels": {"a": {"b": 1}}}]},
            "alerts[0].labels.a: expected a string",
        ),
        (
            {"version": "4", "groupKey": "k", "status": "firing", "alerts": [{"labels": {}, "startsAt": "yesterday"}]},
            "alerts[0].startsAt: 'yesterday' is not an RFC 3339 time",
        ),
    ],
)
async def test_malformed_payloads_get_400_with_the_reason_and_store_nothing(
    bot: BotHarness, body: Any, reason: str
) -> None:
    response = await send(bot, body)
    assert response.status_code == 400
    assert reason in response.json()["error"]
    assert await groups(bot) == []
    assert alert_messages(bot) == []


async def test_a_nul_character_in_a_delivery_is_stored_without_it_not_refused_with_a_503(bot: BotHarness) -> None:
    """PostgreSQL text cannot hold NUL: a 503 would make the sender retry a delivery that can never be stored."""
    alert = p.am_alert(severity="critical", summary="Checkout\x00 errors", team="pay\x00ments")
    alert["fingerprint"] = "fp\x00-1"
    body = p.alertmanager([alert], group_key='{}:{alertname="HighErrorRate\x00"}')
    body.update(receiver="incident\x00-bot", externalURL="http://alertmanager\x00.example.com")
    body["commonAnnotations"]["summary"] = "Checkout\x00 errors"
    for _ in range(2):  # a repeat lands on the same group
        response = await send(bot, body)
        assert response.status_code == 200, response.text
    [group] = await groups(bot)
    assert group.title == "HighErrorRate: Checkout errors" and group.notifications == 2
    assert group.receiver == "incident-bot" and group.external_url == "http://alertmanager.example.com"
    async with bot.deps.db.session() as session:
        [instance] = (await session.exec(select(AlertInstance))).all()
    assert instance.fingerprint == "fp-1" and instance.labels["team"] == "payments"
    [message] = alert_messages(bot)
    assert "Checkout errors" in rendered(message) and "\x00" not in rendered(message)


@pytest.mark.parametrize("count", [2**31, 2**62])
async def test_a_huge_truncated_count_is_stored_not_answered_503(bot: BotHarness, count: int) -> None:
    """`truncatedAlerts` is a uint64 in Alertmanager: beyond PostgreSQL's INTEGER every retry was a 503."""
    body = p.alertmanager([p.am_alert()])
    body["truncatedAlerts"] = count
    response = await send(bot, body)
    assert response.status_code == 200, response.text
    [group] = await groups(bot)
    assert group.truncated == 1_000_000_000 and group.firing_total == 1_000_000_001


# --- auth ---------------------------------------------------------------------------------------------


@pytest.fixture
async def guarded_bot(fake_slack: FakeSlack, database_url: str, tmp_path: Any) -> Any:
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, alerts_token="s3cret-alerts-token"
    )
    bot, stop = await start_bot(fake=fake_slack, settings=settings)
    yield bot
    await stop()


@pytest.mark.parametrize(
    "header",
    [
        None,
        "Bearer wrong-token",
        "Bearer s3cret-alerts-tokenX",
        "Bearer",
        "Token s3cret-alerts-token",
        "Basic " + base64.b64encode(b"alertmanager:wrong").decode(),
        "Basic not-base64!!",
    ],
)
async def test_auth_refused_without_the_right_token(guarded_bot: BotHarness, header: str | None) -> None:
    headers = {"Authorization": header} if header is not None else {}
    response = await send(guarded_bot, p.alertmanager([p.am_alert()]), headers=headers)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert await groups(guarded_bot) == []
    assert "s3cret" not in response.text


@pytest.mark.parametrize(
    "header",
    [
        "Bearer s3cret-alerts-token",
        "bearer s3cret-alerts-token",
        "Basic " + base64.b64encode(b"grafana:s3cret-alerts-token").decode(),
    ],
)
async def test_auth_accepted_with_the_token(guarded_bot: BotHarness, header: str) -> None:
    response = await send(guarded_bot, p.alertmanager([p.am_alert()]), headers={"Authorization": header})
    assert response.status_code == 200
    assert len(await groups(guarded_bot)) == 1
