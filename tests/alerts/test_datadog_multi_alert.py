"""A Datadog multi-alert monitor (`avg:cpu{*} by {host}`) sends one webhook per host: each host is an alert
of the monitor's group, so the monitor (and the offer to resolve its incident) clears with its last host."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from bot.alerts import service as alert_service
from tests.alerts import source_bodies as b
from tests.alerts.helpers import action_ids, alert_messages, groups, incident_count, rendered, send
from tests.harness import BotHarness

AGGREG_KEY = b.datadog("Triggered")["aggreg_key"]
MONITOR = b.datadog("Triggered")["alert_id"]


@pytest.fixture
def bot_config() -> dict[str, Any]:
    rules = [{"match": {"severity": "P1"}, "severity": "P1"}]
    return {"alerts": {"auto_declare": rules, "sources": {"dd": {"preset": "datadog"}}}}


def _host(transition: str, host: str, *, scope_field: bool) -> dict[str, Any]:
    """The README's payload names the host in the title only; with `$ALERT_SCOPE` added it says it on its own."""
    verb = "Triggered" if transition == "Triggered" else "Recovered"
    if scope_field:
        return {**b.datadog(transition), "title": "[P1] High CPU", "alert_scope": f"host:{host}"}
    return {**b.datadog(transition), "title": f"[P1] [{verb} on {{host:{host}}}] High CPU"}


def _offers(bot: BotHarness, channel: str) -> list[Any]:
    return [m for m in bot.fake.messages(channel) if "alert_resolve_incident" in action_ids(m)]


async def _post(bot: BotHarness, body: dict[str, Any]) -> None:
    response = await send(bot, body, source="dd")
    assert response.status_code == 200, response.text


@pytest.mark.parametrize("scope_field", [False, True], ids=["scope-in-title", "alert_scope"])
async def test_one_host_recovering_leaves_the_monitor_firing_until_the_last_one_does(
    bot: BotHarness, scope_field: bool
) -> None:
    await _post(bot, _host("Triggered", "web-1", scope_field=scope_field))
    await _post(bot, _host("Triggered", "web-2", scope_field=scope_field))
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    [group] = await groups(bot)
    assert await incident_count(bot) == 1 and group.incident_id == 1 and group.status == "firing"
    assert "more alert firing" in rendered(bot.fake.messages(channel)[-1])  # web-2 joined the incident
    [card] = alert_messages(bot)
    assert "web-1" in rendered(card) and "web-2" in rendered(card)

    await _post(bot, _host("Recovered", "web-1", scope_field=scope_field))
    [group] = await groups(bot)
    assert group.status == "firing", "web-2 is still down"
    assert (await bot.incident(1)).is_open and _offers(bot, channel) == []
    statuses = {a.labels.get("host"): a.status for a in await alert_service_instances(bot, group.id or 0)}
    assert statuses == {"web-1": "resolved", "web-2": "firing"}

    await _post(bot, _host("Recovered", "web-2", scope_field=scope_field))
    [group] = await groups(bot)
    assert group.status == "resolved"
    [offer] = _offers(bot, channel)
    assert "has resolved" in rendered(offer) and (await bot.incident(1)).is_open  # offered, as for all senders
    texts = [e.text for e in await bot.timeline(1) if e.kind == "alert"]
    assert any("High CPU firing (1 firing, 1 resolved; 1 cleared)" in t for t in texts), texts


async def test_an_alert_stored_before_hosts_were_told_apart_clears_with_the_first_recovery(bot: BotHarness) -> None:
    """An upgrade with a monitor firing: its alert was stored under the monitor alone (as a simple monitor's
    still is). The first host to recover clears it; a host that notified since keeps the monitor firing."""
    await _post(bot, {**b.datadog("Triggered"), "title": "[P1] [Triggered] High CPU"})
    [group] = await groups(bot)
    [old] = await alert_service_instances(bot, group.id or 0)
    assert old.fingerprint == hashlib.sha256(f"dd\x00{MONITOR}".encode()).hexdigest()[:16]
    assert group.group_key == f"dd:{MONITOR}"
    channel = (await bot.incident(1)).channel_id or ""

    await _post(bot, _host("Triggered", "web-2", scope_field=False))  # web-2 notifies again after the upgrade
    await _post(bot, _host("Recovered", "web-1", scope_field=False))
    [group] = await groups(bot)
    assert group.status == "firing" and _offers(bot, channel) == []
    assert {a.fingerprint: a.status for a in await alert_service_instances(bot, group.id or 0)}[old.fingerprint] == (
        "resolved"
    )

    await _post(bot, _host("Recovered", "web-2", scope_field=False))
    [group] = await groups(bot)
    assert group.status == "resolved" and len(_offers(bot, channel)) == 1
    assert await incident_count(bot) == 1


async def alert_service_instances(bot: BotHarness, group_id: int) -> list[Any]:
    async with bot.deps.db.session() as session:
        return await alert_service.instances(session, group_id=group_id)


async def test_the_monitor_groups_its_deliveries_whatever_aggreg_key_says(bot: BotHarness) -> None:
    """Datadog documents `$ALERT_ID` (the monitor) as the stable id; `$AGGREG_KEY` only as "events belonging
    together". A recovery whose aggreg_key differed from the trigger's made a second group and left the
    first firing for good."""
    await _post(bot, {**b.datadog("Triggered"), "aggreg_key": "a1"})
    await _post(bot, {**b.datadog("Recovered"), "aggreg_key": "b2"})
    [group] = await groups(bot)
    assert group.status == "resolved" and group.group_key == f"dd:{MONITOR}"
    assert await incident_count(bot) == 1


async def test_a_monitor_stored_under_its_aggreg_key_by_an_older_version_still_resolves(bot: BotHarness) -> None:
    """An upgrade with a monitor firing: its group was stored under `aggreg_key` (as a payload without
    `alert_id` still is). Its recovery reaches that group, host by host, and the next outage after the
    incident is over starts the monitor's own group."""
    legacy = {k: v for k, v in b.datadog("Triggered").items() if k != "alert_id"}
    await _post(bot, {**legacy, "title": "[P1] [Triggered on {host:web-1}] High CPU"})
    [old] = await groups(bot)
    assert old.group_key == f"dd:{AGGREG_KEY}" and old.incident_id == 1
    channel = (await bot.incident(1)).channel_id or ""

    await _post(bot, _host("Triggered", "web-2", scope_field=True))  # after the upgrade: joins the open group
    await _post(bot, _host("Recovered", "web-1", scope_field=False))
    [group] = await groups(bot)
    assert group.id == old.id and group.status == "firing"
    await _post(bot, _host("Recovered", "web-2", scope_field=True))
    [group] = await groups(bot)
    assert group.status == "resolved" and len(_offers(bot, channel)) == 1
    assert {a.status for a in await alert_service_instances(bot, group.id or 0)} == {"resolved"}


async def test_a_host_down_after_the_incident_was_resolved_is_declared_and_the_others_still_count(
    bot: BotHarness,
) -> None:
    """web-2 went down after INC-1 was resolved while web-1 still was: a new incident, and web-1 (which
    this delivery does not name) still keeps the monitor firing when web-2 recovers."""
    await _post(bot, _host("Triggered", "web-1", scope_field=True))
    await bot.command("resolve fixed", user="U0ALICE", channel=(await bot.incident(1)).channel_id or "")
    await _post(bot, _host("Triggered", "web-2", scope_field=True))
    [group] = await groups(bot)
    assert await incident_count(bot) == 2 and group.incident_id == 2 and group.episode == 2
    await _post(bot, _host("Recovered", "web-2", scope_field=True))
    [group] = await groups(bot)
    assert group.status == "firing", "web-1 is still down"
