"""How each preset sender says an alert stopped (or never started) firing, as its documentation says it."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import limits
from bot.alerts import service as alert_service
from tests.alerts import source_bodies as b
from tests.alerts.helpers import alert_messages, groups, rendered, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

TOKEN = "alerts-token-5c4b3a"
BEARER = {"Authorization": f"Bearer {TOKEN}"}
SOURCES: dict[str, Any] = {
    "uptime": {"preset": "uptimerobot"},
    "dd": {"preset": "datadog"},
    "sentry": {"preset": "sentry", "client_secret_env": "TEST_SENTRY_SECRET"},
    "betterstack": {"preset": "betterstack"},
}


@pytest.fixture
async def sbot(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BotHarness]:
    monkeypatch.setenv("TEST_SENTRY_SECRET", b.SENTRY_SECRET)
    config = {"alerts": {"sources": SOURCES}}
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=config, alerts_token=TOKEN
    )
    async with running_bot(fake=fake_slack, settings=settings) as harness:
        yield harness


async def _instances(bot: BotHarness, group_id: int) -> list[Any]:
    async with bot.deps.db.session() as session:
        return await alert_service.instances(session, group_id=group_id)


def _betterstack_documented(event: str) -> dict[str, Any]:
    """Better Stack's incident webhook as its documentation shows it: the top-level `event` says what
    happened; the attributes carry no `status`, and `resolved_at` may still be empty when it says resolved."""
    body = b.betterstack(False)
    attributes = body["data"]["attributes"]
    del attributes["status"]
    if event == "acknowledged":
        attributes["acknowledged_at"] = attributes["started_at"]
    return {"event": event, **body}


async def test_better_stack_resolved_event_resolves_without_resolved_at(sbot: BotHarness) -> None:
    for event, status in (("started", "firing"), ("acknowledged", "firing"), ("resolved", "resolved")):
        response = await send(sbot, _betterstack_documented(event), source="betterstack", headers=BEARER)
        assert response.status_code == 200, response.text
        [group] = await groups(sbot)
        assert group.status == status, event


async def test_a_sentry_issue_archived_or_ignored_stops_firing_and_says_why(sbot: BotHarness) -> None:
    """Archiving an issue is how Sentry users silence it: the bot's alert stopped firing only on `resolved`,
    so an archived issue's alert stayed firing for good."""
    for action, seen in (("archived", b.started(12)), ("ignored", b.started(2))):
        # An archived issue comes back as Sentry says it: unresolved, seen again (each delivery a body of its own).
        fired = b.encoded(b.sentry_issue("created" if action == "archived" else "unresolved", last_seen=seen))
        response = await send(sbot, fired, source="sentry", headers=b.sentry_headers(fired, "issue"))
        assert response.status_code == 200, response.text
        assert (await groups(sbot))[0].status == "firing"
        body = b.sentry_issue(action, last_seen=seen)
        body["data"]["issue"].update(status="ignored", substatus="archived_until_escalating")
        raw = b.encoded(body)
        response = await send(sbot, raw, source="sentry", headers=b.sentry_headers(raw, "issue"))
        assert response.status_code == 200 and response.json()["status"] == "accepted", response.text
        [group] = await groups(sbot)
        assert group.status == "resolved", action
        [alert] = await _instances(sbot, group.id or 0)
        assert alert.status == "resolved" and alert.labels.get("sentry_status") == "archived"
        assert "Archived in Sentry (archived until escalating)" in alert.annotations["summary"]
        assert "Archived in Sentry" in rendered(alert_messages(sbot)[-1])


def _uptimerobot_query(alert_type: str) -> str:
    from urllib.parse import urlencode

    return urlencode(b.uptimerobot(alert_type))


@pytest.mark.parametrize("joined", ["&", "?"], ids=["appended-with-&", "appended-with-?"])
async def test_uptimerobot_variables_in_the_query_string_beside_the_token(sbot: BotHarness, joined: str) -> None:
    """UptimeRobot's "query string" mode puts its variables in the URL, after our `?token=`, with an empty
    body: the body was required (400), and a second `?` made the token itself wrong (401)."""
    for alert_type, status in (("1", "firing"), ("2", "resolved")):
        url = f"{sbot.url}/alerts/uptime?token={TOKEN}{joined}{_uptimerobot_query(alert_type)}"
        response = await sbot.http.post(url, content=b"")
        await sbot.settle()
        assert response.status_code == 200, response.text
        [group] = await groups(sbot)
        assert group.status == status and group.title.startswith("API health is")
    wrong = await sbot.http.post(f"{sbot.url}/alerts/uptime?token=nope{joined}{_uptimerobot_query('1')}", content=b"")
    assert wrong.status_code == 401


async def test_uptimerobot_json_body_with_variables_in_the_query_too(sbot: BotHarness) -> None:
    """Both at once: the body says what happened, whatever the URL carries."""
    url = f"{sbot.url}/alerts/uptime?token={TOKEN}&{_uptimerobot_query('1')}"
    response = await send(sbot, b.uptimerobot("2"), source=url.removeprefix(f"{sbot.url}/alerts/"))
    assert response.status_code == 200, response.text
    [group] = await groups(sbot)
    assert group.status == "resolved"


async def test_a_big_sentry_event_is_read_and_a_body_past_the_limit_is_a_clear_413(sbot: BotHarness) -> None:
    """A Sentry event alert carries the whole event (stack traces, breadcrumbs): one over the server's 2 MiB
    request limit was refused with aiohttp's plain-text 413 before the signature was even checked."""
    body = b.sentry_event_alert()
    body["data"]["event"]["breadcrumbs"] = {"values": [{"message": "x" * 1000}] * 3000}
    raw = b.encoded(body)
    assert 2 * 1024 * 1024 < len(raw) < limits.MAX_SOURCE_BODY_BYTES
    response = await send(sbot, raw, source="sentry", headers=b.sentry_headers(raw, "event_alert"))
    assert response.status_code == 200, response.text[:300]
    assert len(await groups(sbot)) == 1

    huge = b.encoded({**b.datadog("Triggered"), "body": "x" * limits.MAX_SOURCE_BODY_BYTES})
    response = await send(sbot, huge, source="dd", headers=BEARER)
    assert response.status_code == 413 and "larger than" in response.json()["error"]
    refused = await send(sbot, huge, source="dd", headers={"Authorization": "Bearer nope"})
    assert refused.status_code == 401 and "token" in refused.json()["error"]  # refused before reading it
    assert len(await groups(sbot)) == 1


@pytest.mark.parametrize("transition", ["Null", ""])
async def test_a_datadog_null_transition_is_ignored_not_refused(sbot: BotHarness, transition: str) -> None:
    """Datadog documents `Null` among `$ALERT_TRANSITION`'s values; it was answered 400 as malformed."""
    response = await send(sbot, {**b.datadog("Triggered"), "alert_transition": transition}, source="dd", headers=BEARER)
    assert response.status_code == 200 and response.json()["status"] == "ignored", response.text
    assert await groups(sbot) == []
    missing = {k: v for k, v in b.datadog("Triggered").items() if k != "alert_transition"}
    response = await send(sbot, missing, source="dd", headers=BEARER)
    assert response.status_code == 400 and "alert_transition is missing" in response.json()["error"]


async def test_a_lone_surrogate_in_a_delivery_is_stored_as_a_replacement_not_refused_with_a_503(
    sbot: BotHarness,
) -> None:
    """A sender that cut an emoji in half (`\\ud83d` with no pair, valid JSON) made every retry a 503: no
    database driver encodes a lone surrogate, so the outage was never stored."""
    body = b.betterstack(False)
    body["data"]["attributes"]["cause"] = "Status 503 CUT"
    raw = json.dumps(body).replace("CUT", "\\ud83d").encode()
    for _ in range(2):  # a repeat lands on the same group
        response = await send(sbot, raw, source="betterstack", headers=BEARER)
        assert response.status_code == 200, response.text
    [group] = await groups(sbot)
    assert group.summary == "Status 503 \ufffd" and group.notifications == 2
    assert "Status 503" in rendered(alert_messages(sbot)[0])
