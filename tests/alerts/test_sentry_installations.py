"""Sentry installations on one source: self-hosted Sentry numbers its issues from 1, so two installations
send the same issue id; each delivery names its installation (`installation.uuid`), and a group is its own."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from sqlmodel import col, select

from bot.alerts.models import AlertInstance
from tests.alerts import source_bodies as b
from tests.alerts.helpers import alert_messages, groups, incident_count, send
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot

SAAS = "7a485448-a9e2-4c85-8a3c-4f44175783c9"
SELF_HOSTED = "0b9d5c1e-2f3a-4b6c-8d7e-9f0a1b2c3d4e"
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


def _from(installation: str | None, body: dict[str, Any]) -> dict[str, Any]:
    """The body as that installation sends it; None: without `installation` (as a group stored before
    installations were told apart was keyed)."""
    body.pop("installation", None)
    return body if installation is None else {**body, "installation": {"uuid": installation}}


async def _post(bot: BotHarness, body: dict[str, Any], resource: str) -> None:
    raw = b.encoded(body)
    response = await send(bot, raw, source="sentry", headers=b.sentry_headers(raw, resource))
    assert response.status_code == 200 and response.json()["status"] == "accepted", response.text


async def _statuses(bot: BotHarness) -> list[tuple[str, list[str]]]:
    """Each group's status and its alerts' statuses, in the order the groups were made."""
    out = []
    async with bot.deps.db.session() as session:
        for group in await groups(bot):
            rows = await session.exec(select(AlertInstance.status).where(col(AlertInstance.group_id) == group.id))
            out.append((group.status, sorted(rows.all())))
    return out


async def test_two_installations_with_one_issue_id_are_two_groups(sbot: BotHarness) -> None:
    await _post(sbot, _from(SAAS, b.sentry_event_alert()), "event_alert")
    await _post(sbot, _from(SELF_HOSTED, b.sentry_event_alert()), "event_alert")
    # Two alerts, two cards, two incidents: the second is not the first's by its issue number (nor joined to
    # the first's incident as the same alert).
    assert await _statuses(sbot) == [("firing", ["firing"]), ("firing", ["firing"])]
    assert len(alert_messages(sbot)) == 2
    assert await incident_count(sbot) == 2

    # One installation resolving its issue leaves the other's firing.
    await _post(sbot, _from(SAAS, b.sentry_issue("resolved")), "issue")
    assert await _statuses(sbot) == [("resolved", ["resolved"]), ("firing", ["firing"])]
    await _post(sbot, _from(SELF_HOSTED, b.sentry_issue("resolved")), "issue")
    assert await _statuses(sbot) == [("resolved", ["resolved"]), ("resolved", ["resolved"])]


async def test_a_group_stored_before_installations_were_told_apart_is_resolved_by_its_resolve(
    sbot: BotHarness,
) -> None:
    await _post(sbot, _from(None, b.sentry_event_alert()), "event_alert")  # stored before: by the issue id
    await _post(sbot, _from(SAAS, b.sentry_event_alert()), "event_alert")  # a repeat after the upgrade
    await _post(sbot, _from(SAAS, b.sentry_issue("resolved")), "issue")
    [(status, alerts)] = await _statuses(sbot)  # no second group: the open one took both deliveries
    assert status == "resolved" and alerts and set(alerts) == {"resolved"}, alerts
    assert await incident_count(sbot) == 1
