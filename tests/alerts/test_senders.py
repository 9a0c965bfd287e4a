"""Independent Alertmanagers (or Grafana instances) with the same routes send the same `groupKey`: each
sender's alerts are a group of their own, so one cluster's resolve never clears another's group or incident."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
from sqlalchemy import update
from sqlmodel import col

from bot.alerts.models import AlertGroup
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, action_ids, alert_messages, groups, incident_count, rendered, send
from tests.fakes.slack_api import Message
from tests.harness import BotHarness

EU = "http://alertmanager.eu.example.com:9093"
US = "http://alertmanager.us.example.com:9093"
KEY = '{}/{severity="critical"}:{alertname="HighErrorRate"}'


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return AUTO


def _from(sender: str | None, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Alertmanager's body for `alerts` as the one at `sender` sends it (None: one that names no URL)."""
    body = p.alertmanager(alerts, group_key=KEY)
    if sender is None:
        del body["externalURL"]
    else:
        body["externalURL"] = sender
    return body


def _alert(cluster: str, *, status: str = "firing") -> dict[str, Any]:
    return p.am_alert(severity="critical", cluster=cluster, status=status)


def _offers(bot: BotHarness, channel: str) -> list[Message]:
    return [m for m in bot.fake.messages(channel) if "alert_resolve_incident" in action_ids(m)]


async def _channel(bot: BotHarness, incident_id: int | None) -> str:
    assert incident_id is not None
    return (await bot.incident(incident_id)).channel_id or ""


async def test_one_cluster_resolving_leaves_the_other_clusters_group_and_incident_open(bot: BotHarness) -> None:
    """Two clusters' Alertmanagers, same routes: the second's alerts joined the first's group, and the
    first's resolve cleared it and offered to resolve an incident the second cluster still burned in."""
    await send(bot, _from(EU, [_alert("eu")]))
    await send(bot, _from(US, [_alert("us")]))
    eu, us = await groups(bot)
    assert eu.group_key == us.group_key == KEY and eu.key_hash != us.key_hash
    assert len(alert_messages(bot)) == 2 and await incident_count(bot) == 2
    eu_channel, us_channel = await _channel(bot, eu.incident_id), await _channel(bot, us.incident_id)

    await send(bot, _from(EU, [_alert("eu", status="resolved")]))
    eu, us = await groups(bot)
    assert eu.status == "resolved" and us.status == "firing"
    assert len(_offers(bot, eu_channel)) == 1 and _offers(bot, us_channel) == []
    assert (await bot.incident(us.incident_id or 0)).is_open
    assert not any("resolved" in rendered(m) for m in bot.fake.messages(us_channel))

    await send(bot, _from(US, [_alert("us", status="resolved")]))
    assert [g.status for g in await groups(bot)] == ["resolved", "resolved"]
    assert len(_offers(bot, us_channel)) == 1


async def test_two_grafana_instances_with_the_same_org_and_group_key_are_two_groups(bot: BotHarness) -> None:
    """Grafana names itself with `externalURL` (its root URL) too; its orgId alone told two instances' org 1
    apart from nothing."""
    us = "https://grafana.us.example.com/"
    await send(bot, p.grafana(), source="grafana")
    await send(bot, {**p.grafana(), "externalURL": us}, source="grafana")
    await send(bot, {**p.grafana(status="resolved"), "externalURL": us}, source="grafana")
    found = await groups(bot)
    assert [g.status for g in found] == ["firing", "resolved"] and len(alert_messages(bot)) == 2


async def test_a_sender_naming_no_url_is_grouped_by_its_key_as_before(bot: BotHarness) -> None:
    """An older Alertmanager, or a proxy that drops the field: the group key alone, as every version kept it;
    and one URL spelled two ways (case, a trailing slash) is one sender."""
    await send(bot, _from("HTTP://AlertManager.US.example.com:9093/", [_alert("us")]))
    await send(bot, _from(US, [_alert("us", status="resolved")]))
    [group] = await groups(bot)
    assert group.status == "resolved"

    await send(bot, _from(None, [_alert("eu")]))
    await send(bot, {**_from(None, [_alert("eu", status="resolved")]), "externalURL": ""})
    _, plain = await groups(bot)
    assert plain.status == "resolved" and plain.key_hash == hashlib.sha256(KEY.encode()).hexdigest()


async def _stored_the_old_way(bot: BotHarness, group: AlertGroup) -> None:
    """The row as a version before senders were told apart wrote it: keyed by the group key alone."""
    async with bot.deps.db.session() as session:
        old_hash = hashlib.sha256(group.group_key.encode()).hexdigest()
        await session.exec(update(AlertGroup).where(col(AlertGroup.id) == group.id).values(key_hash=old_hash))
        await session.commit()


async def test_a_group_stored_before_the_upgrade_is_resolved_by_the_resolve_after_it(bot: BotHarness) -> None:
    await send(bot, _from(EU, [_alert("eu")]))
    [old] = await groups(bot)
    await _stored_the_old_way(bot, old)
    channel = await _channel(bot, old.incident_id)

    await send(bot, _from(EU, [_alert("eu")]))  # a repeat after the upgrade: the same group, no second card
    await send(bot, _from(EU, [_alert("eu", status="resolved")]))
    [group] = await groups(bot)
    assert group.id == old.id and group.status == "resolved" and group.notifications == 3
    assert len(_offers(bot, channel)) == 1 and len(alert_messages(bot)) == 1

    await bot.command("resolve fixed", user="U0ALICE", channel=channel)
    await send(bot, _from(EU, [_alert("eu")]))  # the next outage, its incident over: the sender's own group
    old_again, new = await groups(bot)
    assert old_again.status == "resolved" and new.status == "firing" and new.incident_id == 2


async def test_a_group_stored_before_the_upgrade_is_not_joined_by_another_sender(bot: BotHarness) -> None:
    """Stored before the upgrade, the US cluster's group is the US cluster's: the EU cluster firing the same
    key after it gets a group of its own, and its resolve leaves the US group and incident alone."""
    await send(bot, _from(US, [_alert("us")]))
    [old] = await groups(bot)
    await _stored_the_old_way(bot, old)

    await send(bot, _from(EU, [_alert("eu")]))
    await send(bot, _from(EU, [_alert("eu", status="resolved")]))
    us, eu = await groups(bot)
    assert us.id == old.id and us.status == "firing" and eu.status == "resolved"
    assert us.incident_id != eu.incident_id and _offers(bot, await _channel(bot, us.incident_id)) == []

    await send(bot, _from(US, [_alert("us", status="resolved")]))
    us, _ = await groups(bot)
    assert us.status == "resolved" and len(_offers(bot, await _channel(bot, us.incident_id))) == 1
