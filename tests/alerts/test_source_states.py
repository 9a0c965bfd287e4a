"""How each preset sender says an alert stopped (or never started) firing, as its documentation says it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.alerts import source_bodies as b
from tests.alerts.helpers import groups, send
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
