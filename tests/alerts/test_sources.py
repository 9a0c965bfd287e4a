"""`alerts.sources`: each preset and a `map:` source end to end through the real server and app."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.alerts import source_bodies as b
from tests.alerts.helpers import action_ids, alert_messages, groups, incident_count, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

TOKEN = "alerts-token-9f8e7d"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
RULES = [
    {"match": {"severity": "critical"}, "severity": "P1"},
    {"match": {"severity": "P1"}, "severity": "P1"},
    {"match": {"severity": "error"}, "severity": "P2"},
]
MAP = {
    "group_key": "check.id",
    "status": "state == 'FAILING'",
    "title": "check.name",
    "severity": "tags.severity",
    "service": "tags.service",
    "labels": "tags",
    "started_at": "started",
    "link": "url",
    "description": "message",
}
SOURCES: dict[str, Any] = {
    "uptime": {"preset": "uptimerobot", "severity": "P1"},
    "dd": {"preset": "datadog"},
    "sentry": {"preset": "sentry", "client_secret_env": "TEST_SENTRY_SECRET"},
    "pingdom": {"preset": "pingdom"},
    "betterstack": {"preset": "betterstack", "severity": "P1"},
    "checks": {"map": MAP},
}
CONFIG = {"alerts": {"auto_declare": RULES, "sources": SOURCES}, "services": {"api": {"health_url": "http://x/h"}}}


@pytest.fixture
async def sbot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("TEST_SENTRY_SECRET", b.SENTRY_SECRET)
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=CONFIG, alerts_token=TOKEN
    )
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness


Delivery = tuple[bytes, dict[str, str]]


def _json(body: dict[str, Any], headers: dict[str, str] | None = None) -> Delivery:
    return b.encoded(body), {**BEARER, **(headers or {})}


def _sentry(body: dict[str, Any], resource: str) -> Delivery:
    raw = b.encoded(body)
    return raw, b.sentry_headers(raw, resource)


def _sentry_event() -> dict[str, Any]:
    """Each event alert Sentry sends is about an event of its own (a repeat is the issue's next event)."""
    body = b.sentry_event_alert()
    body["data"]["event"]["event_id"] = uuid.uuid4().hex
    return body


@dataclass
class Case:
    source: str  # the path; UptimeRobot puts its token in the URL
    fire: Callable[[], Delivery]
    resolve: Callable[[], Delivery]
    title: str
    severity: str


CASES = {
    "uptimerobot": Case(
        f"uptime?token={TOKEN}",
        lambda: (b.encoded(b.uptimerobot("1")), {}),
        lambda: (b.encoded(b.uptimerobot("2")), {}),
        "API health is down",
        "P1",
    ),
    "datadog": Case(
        "dd",
        lambda: _json(b.datadog("Triggered")),
        lambda: _json(b.datadog("Recovered")),
        "High error rate on checkout",
        "P1",
    ),
    "sentry": Case(
        "sentry",
        lambda: _sentry(_sentry_event(), "event_alert"),
        lambda: _sentry(b.sentry_issue("resolved"), "issue"),
        "ZeroDivisionError: division by zero",
        "P2",
    ),
    "pingdom": Case(
        "pingdom",
        lambda: _json(b.pingdom("DOWN")),
        lambda: _json(b.pingdom("UP")),
        "Checkout is down",
        "P1",
    ),
    "betterstack": Case(
        "betterstack",
        lambda: _json(b.betterstack(False)),
        lambda: _json(b.betterstack(True)),
        "API health",
        "P1",
    ),
}


async def _post(bot: BotHarness, source: str, delivery: Delivery) -> Any:
    body, headers = delivery
    return await send(bot, body, source=source, headers=headers)


@pytest.mark.parametrize("preset", list(CASES))
async def test_preset_fires_repeats_and_resolves_like_alertmanager(sbot: BotHarness, preset: str) -> None:
    case = CASES[preset]
    response = await _post(sbot, case.source, case.fire())
    assert response.status_code == 200, response.text
    assert response.json()["status"] == "accepted"
    incident = await sbot.incident(1)  # the auto_declare rule matched what the sender said
    assert case.title in incident.title and incident.severity == case.severity
    [group] = await groups(sbot)
    assert group.source == case.source.partition("?")[0] and group.status == "firing"
    assert group.declared_how == "auto" and group.incident_id == 1
    # Impact started when the sender says the check failed (12 minutes ago), not at the declaration.
    assert incident.impact_started_at is not None
    assert 11 * 60 <= (incident.declared_at - incident.impact_started_at).total_seconds() <= 13 * 60

    again = await _post(sbot, case.source, case.fire())
    assert again.status_code == 200 and again.json()["group"] == group.id
    [group] = await groups(sbot)
    assert group.notifications == 2 and await incident_count(sbot) == 1
    assert len(alert_messages(sbot)) == 1  # the same message, updated

    cleared = await _post(sbot, case.source, case.resolve())
    assert cleared.status_code == 200, cleared.text
    [group] = await groups(sbot)
    assert group.status == "resolved"
    incident = await sbot.incident(1)
    assert incident.is_open  # the bot offers; people resolve
    offer = sbot.fake.messages(incident.channel_id or "")[-1]
    assert action_ids(offer) == ["alert_resolve_incident"] and "has resolved" in rendered(offer)
    assert "resolved" in rendered(alert_messages(sbot)[0]).lower()


@pytest.mark.parametrize("preset", list(CASES))
async def test_preset_refuses_a_wrong_token_and_stores_nothing(sbot: BotHarness, preset: str) -> None:
    case = CASES[preset]
    body, headers = case.fire()
    path = case.source.partition("?")[0]
    wrong = {k: v for k, v in headers.items() if k not in ("Authorization", "Sentry-Hook-Signature")}
    wrong["Authorization"] = "Bearer not-the-token"
    if preset == "sentry":
        wrong["Sentry-Hook-Signature"] = b.sentry_headers(body, "event_alert", secret="another")[
            "Sentry-Hook-Signature"
        ]
    response = await send(sbot, body, source=path, headers=wrong)
    assert response.status_code == 401, response.text
    by_query = await send(sbot, body, source=f"{path}?token=nope", headers={})
    assert by_query.status_code == 401
    assert await groups(sbot) == [] and await incident_count(sbot) == 0


async def test_token_in_the_query_or_the_header_is_accepted(sbot: BotHarness) -> None:
    ok = await send(sbot, b.pingdom("DOWN"), source=f"pingdom?token={TOKEN}", headers={})
    assert ok.status_code == 200, ok.text
    also = await send(sbot, b.datadog("Triggered"), source="dd", headers=BEARER)
    assert also.status_code == 200, also.text


async def test_sentry_signature_is_over_the_exact_body(sbot: BotHarness) -> None:
    raw = b.encoded(b.sentry_event_alert())
    headers = b.sentry_headers(raw, "event_alert")
    tampered = raw.replace(b"division by zero", b"division by one!")
    refused = await send(sbot, tampered, source="sentry", headers=headers)
    assert refused.status_code == 401 and "Sentry-Hook-Signature" in refused.json()["error"]
    installation = b.encoded({"action": "created", "data": {"installation": {"uuid": "x"}}})
    ignored = await send(sbot, installation, source="sentry", headers=b.sentry_headers(installation, "installation"))
    assert ignored.status_code == 200 and ignored.json()["status"] == "ignored"
    assert await groups(sbot) == []


async def test_malformed_preset_bodies_get_a_400_that_says_why(sbot: BotHarness) -> None:
    response = await send(sbot, {"check_id": 1, "current_state": "SIDEWAYS"}, source="pingdom", headers=BEARER)
    assert response.status_code == 400 and "current_state" in response.json()["error"]
    response = await send(sbot, {"alertType": "1"}, source=f"uptime?token={TOKEN}", headers={})
    assert response.status_code == 400 and "monitorID" in response.json()["error"]
    response = await send(sbot, b"not json", source="dd", headers=BEARER)
    assert response.status_code == 400


def _check(state: str, *, severity: str = "critical") -> dict[str, Any]:
    return {
        "check": {"id": "c-42", "name": "Login flow"},
        "state": state,
        "message": "Step 3 (submit) timed out after 10 s",
        "tags": {"service": "api", "severity": severity, "region": "eu-west-1"},
        "started": b.started(20).isoformat(),
        "url": "https://checks.example.com/c-42",
    }


async def test_map_source_reads_any_body_with_jmespath(sbot: BotHarness) -> None:
    response = await send(sbot, _check("FAILING"), source="checks", headers=BEARER)
    assert response.status_code == 200, response.text
    incident = await sbot.incident(1)
    assert incident.title.startswith("Login flow") and incident.service == "api" and incident.severity == "P1"
    assert incident.impact_started_at is not None
    assert (incident.declared_at - incident.impact_started_at).total_seconds() >= 19 * 60
    [message] = alert_messages(sbot)
    assert "region=eu-west-1" in rendered(message) and "Step 3 (submit) timed out" in rendered(message)
    await send(sbot, _check("PASSING"), source="checks", headers=BEARER)
    [group] = await groups(sbot)
    assert group.status == "resolved" and group.source == "checks"
    offer = sbot.fake.messages(incident.channel_id or "")[-1]
    assert action_ids(offer) == ["alert_resolve_incident"]


async def test_map_source_without_a_group_key_is_refused(sbot: BotHarness) -> None:
    body = _check("FAILING")
    del body["check"]
    response = await send(sbot, body, source="checks", headers=BEARER)
    assert response.status_code == 400 and "map.group_key" in response.json()["error"]


async def test_uptimerobot_default_post_parameters_work_too(sbot: BotHarness) -> None:
    """UptimeRobot can send its variables as a form instead of a JSON body."""
    from urllib.parse import urlencode

    form = urlencode(b.uptimerobot("1")).encode()
    response = await sbot.http.post(
        f"{sbot.url}/alerts/uptime?token={TOKEN}",
        content=form,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    await sbot.settle()
    assert response.status_code == 200, response.text
    [group] = await groups(sbot)
    assert group.title.startswith("API health is down") and group.status == "firing"


async def test_uptimerobot_json_post_value_sent_without_send_as_json_is_read(sbot: BotHarness) -> None:
    """Without "Send as JSON" ticked, UptimeRobot posts the JSON POST value with a form content type:
    it was parsed as a form, found no alertType, and every down and up was refused with a 400."""
    for alert_type, status in (("1", "firing"), ("2", "resolved")):
        response = await sbot.http.post(
            f"{sbot.url}/alerts/uptime?token={TOKEN}",
            content=b.encoded(b.uptimerobot(alert_type)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        await sbot.settle()
        assert response.status_code == 200, response.text
        [group] = await groups(sbot)
        assert group.status == status


async def test_datadog_message_fences_and_bare_tags_are_left_out(sbot: BotHarness) -> None:
    await send(sbot, b.datadog("Triggered"), source="dd", headers=BEARER)
    [message] = alert_messages(sbot)
    text = rendered(message)
    assert "Error rate is 7.2% (threshold 5%)" in text and "%%%" not in text
    assert "`team=payments`" in text and "`monitor=`" not in text


async def test_a_secret_named_in_bot_yml_but_unset_closes_the_endpoint(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TEST_SENTRY_SECRET", raising=False)
    monkeypatch.delenv("TEST_PINGDOM_TOKEN", raising=False)
    sources = {
        "sentry": {"preset": "sentry", "client_secret_env": "TEST_SENTRY_SECRET"},
        "pingdom": {"preset": "pingdom", "token_env": "TEST_PINGDOM_TOKEN"},
    }
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config={"alerts": {"sources": sources}}
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:  # no ALERTS_TOKEN either
        raw = b.encoded(b.sentry_event_alert())
        refused = await send(bot, raw, source="sentry", headers=b.sentry_headers(raw, "event_alert"))
        assert refused.status_code == 401 and "TEST_SENTRY_SECRET" in refused.json()["error"]
        refused = await send(bot, b.pingdom("DOWN"), source="pingdom", headers={})
        assert refused.status_code == 401 and "TEST_PINGDOM_TOKEN" in refused.json()["error"]
        assert await groups(bot) == []


def _minutes_before_declare(incident: Any) -> float:
    assert incident.impact_started_at is not None, "impact start left at the declaration"
    return float((incident.declared_at - incident.impact_started_at).total_seconds()) / 60


async def test_a_regressed_sentry_issue_started_when_it_came_back(sbot: BotHarness) -> None:
    """`unresolved` (regressed) carries the issue's firstSeen from weeks ago; the impact began at lastSeen."""
    now = datetime.now(UTC)
    body = b.sentry_issue("unresolved", first_seen=now - timedelta(days=30), last_seen=now - timedelta(minutes=7))
    response = await _post(sbot, "sentry", _sentry(body, "issue"))
    assert response.status_code == 200, response.text
    incident = await sbot.incident(1)  # level error → P2 by the rules
    assert 6 <= _minutes_before_declare(incident) <= 8


async def test_a_sentry_metric_alert_started_when_sentry_says(sbot: BotHarness) -> None:
    response = await _post(sbot, "sentry", _sentry(b.sentry_metric_alert("critical", minutes_ago=20), "metric_alert"))
    assert response.status_code == 200, response.text
    incident = await sbot.incident(1)  # critical → P1 by the rules
    assert incident.severity == "P1"
    assert 19 <= _minutes_before_declare(incident) <= 21
    cleared = await _post(sbot, "sentry", _sentry(b.sentry_metric_alert("resolved"), "metric_alert"))
    assert cleared.status_code == 200 and (await groups(sbot))[0].status == "resolved"


async def test_a_better_stack_monitor_that_goes_down_again_stays_one_incident(sbot: BotHarness) -> None:
    """Better Stack opens a new incident (new id) for each outage of a monitor: the monitor is the group,
    as a check is for the other senders, so a flap joins the incident still open."""
    await _post(sbot, "betterstack", _json(b.betterstack(False, incident_id="1001")))
    await _post(sbot, "betterstack", _json(b.betterstack(True, incident_id="1001")))
    assert (await sbot.incident(1)).is_open  # offered, not resolved
    again = await _post(sbot, "betterstack", _json(b.betterstack(False, incident_id="1002")))
    assert again.status_code == 200 and again.json()["incident"] == "INC-1"
    assert await incident_count(sbot) == 1 and len(await groups(sbot)) == 1


async def test_a_sentry_metric_alert_that_fires_again_stays_one_incident(sbot: BotHarness) -> None:
    """Each time a metric alert rule fires Sentry opens a new incident of its own (a new id): the rule is
    the group, so firing again while the first incident is open joins it."""
    await _post(sbot, "sentry", _sentry(b.sentry_metric_alert("critical", incident_id="41"), "metric_alert"))
    await _post(sbot, "sentry", _sentry(b.sentry_metric_alert("resolved", incident_id="41"), "metric_alert"))
    assert (await sbot.incident(1)).is_open  # offered, not resolved
    again = await _post(sbot, "sentry", _sentry(b.sentry_metric_alert("critical", incident_id="42"), "metric_alert"))
    assert again.status_code == 200 and again.json()["incident"] == "INC-1"
    assert await incident_count(sbot) == 1 and len(await groups(sbot)) == 1


async def test_a_severity_tag_counts_when_the_preset_finds_no_severity_of_its_own(sbot: BotHarness) -> None:
    """A Datadog monitor with no priority, tagged severity:critical: the tag is what the sender says."""
    body = {**b.datadog("Triggered"), "alert_priority": "", "tags": "env:prod,service:api,severity:critical"}
    response = await send(sbot, body, source="dd", headers=BEARER)
    assert response.status_code == 200, response.text
    incident = await sbot.incident(1)  # the rule severity=critical → P1
    assert incident.severity == "P1"


async def test_an_uptimerobot_ssl_expiry_notice_is_not_the_monitor_going_down(sbot: BotHarness) -> None:
    """UptimeRobot never clears an SSL expiry notice: sharing the monitor's group, it kept that group firing,
    and the monitor going down weeks later only edited the old notice's message far up in #alerts."""
    ssl = await send(sbot, b.uptimerobot("3"), source=f"uptime?token={TOKEN}", headers={})
    assert ssl.status_code == 200, ssl.text
    down = await send(sbot, b.uptimerobot("1"), source=f"uptime?token={TOKEN}", headers={})
    assert down.status_code == 200 and down.json()["group"] != ssl.json()["group"]
    notice, outage = alert_messages(sbot)
    assert "SSL" in rendered(notice) and "API health is down" in rendered(outage)


async def test_datadog_titles_lose_the_priority_and_the_transition_in_front(sbot: BotHarness) -> None:
    """A monitor with a priority is titled `[P1] [Triggered on {host:web-1}] …` by Datadog."""
    body = {**b.datadog("Triggered"), "title": "[P1] [Triggered on {host:web-1}] High error rate on checkout"}
    assert (await send(sbot, body, source="dd", headers=BEARER)).status_code == 200
    incident = await sbot.incident(1)
    assert incident.title.startswith("High error rate on checkout"), incident.title
    body = {**b.datadog("Recovered"), "title": "[P1] [Recovered on {host:web-1}] High error rate on checkout"}
    assert (await send(sbot, body, source="dd", headers=BEARER)).status_code == 200
    [group] = await groups(sbot)
    assert group.title.startswith("High error rate on checkout"), group.title
