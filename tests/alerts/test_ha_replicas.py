"""The replicas of one highly available Alertmanager without a shared `--web.external-url` each name
themselves by their own pod, yet send the same alerts: one replica's firing and the other's resolve are
one group (the fingerprints say so), while independent clusters, whose alerts differ, stay apart."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.alerts import payloads as p
from tests.alerts.helpers import (
    AUTO,
    action_ids,
    alert_messages,
    groups,
    incident_count,
    processor,
    rendered,
    send,
)
from tests.fakes.slack_api import Message
from tests.harness import BotHarness

POD_A = "http://alertmanager-0:9093"
POD_B = "http://alertmanager-1:9093"
KEY = '{}/{severity="critical"}:{alertname="HighErrorRate"}'


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return AUTO


def _from(sender: str, alerts: list[dict[str, Any]]) -> dict[str, Any]:
    """Alertmanager's body for `alerts` as the replica at `sender` sends it."""
    return {**p.alertmanager(alerts, group_key=KEY), "externalURL": sender}


def _alert(cluster: str = "eu", *, status: str = "firing", **labels: str) -> dict[str, Any]:
    return p.am_alert(severity="critical", cluster=cluster, status=status, **labels)


def _offers(bot: BotHarness, channel: str) -> list[Message]:
    return [m for m in bot.fake.messages(channel) if "alert_resolve_incident" in action_ids(m)]


async def _channel(bot: BotHarness, incident_id: int | None) -> str:
    assert incident_id is not None
    return (await bot.incident(incident_id)).channel_id or ""


async def test_one_replicas_resolve_resolves_the_group_the_other_replica_fired(bot: BotHarness) -> None:
    """Replica A fires, replica B repeats it and then sends the resolve: all of it is A's group, its card
    and its incident's resolve offer; no second group, card or incident."""
    await send(bot, _from(POD_A, [_alert(), _alert(instance="api-2:9090")]))
    [group] = await groups(bot)
    channel = await _channel(bot, group.incident_id)

    await send(bot, _from(POD_B, [_alert(), _alert(instance="api-2:9090")]))  # B's repeat: no second card
    await send(bot, _from(POD_B, [_alert(status="resolved"), _alert(instance="api-2:9090", status="resolved")]))
    [resolved] = await groups(bot)
    assert resolved.id == group.id and resolved.status == "resolved" and resolved.notifications == 3
    [card] = alert_messages(bot)
    assert "RESOLVED" in rendered(card)
    assert len(_offers(bot, channel)) == 1 and await incident_count(bot) == 1

    await send(bot, _from(POD_A, [_alert(status="resolved")]))  # A's own resolve after B's: the same group
    assert [g.notifications for g in await groups(bot)] == [4] and len(_offers(bot, channel)) == 1


async def test_a_delivery_sharing_one_alert_of_the_group_joins_it(bot: BotHarness) -> None:
    """B's delivery names a new alert of the group besides one A's group holds: it is that group's."""
    await send(bot, _from(POD_A, [_alert()]))
    await send(bot, _from(POD_B, [_alert(), _alert(instance="api-2:9090")]))
    [group] = await groups(bot)
    assert group.firing_total == 2 and len(alert_messages(bot)) == 1


async def test_two_clusters_with_their_own_alerts_stay_apart(bot: BotHarness) -> None:
    """Independent clusters label their alerts apart: same key, no shared fingerprint, two groups."""
    await send(bot, _from(POD_A, [_alert("eu")]))
    await send(bot, _from(POD_B, [_alert("us")]))
    await send(bot, _from(POD_B, [_alert("us", status="resolved")]))
    eu, us = await groups(bot)
    assert eu.key_hash != us.key_hash and eu.status == "firing" and us.status == "resolved"
    assert eu.incident_id != us.incident_id and _offers(bot, await _channel(bot, eu.incident_id)) == []


async def test_a_resolved_group_of_another_replica_is_not_joined(bot: BotHarness) -> None:
    """A's group resolved and its incident over: B firing the next outage makes a group of its own (a new
    card), and A's repeat of it joins B's, so the outage still has one card and one incident."""
    await send(bot, _from(POD_A, [_alert()]))
    await send(bot, _from(POD_A, [_alert(status="resolved")]))
    [old] = await groups(bot)
    await bot.command("resolve fixed", user="U0ALICE", channel=await _channel(bot, old.incident_id))

    await send(bot, _from(POD_B, [_alert()]))
    old_again, new = await groups(bot)
    assert old_again.status == "resolved" and new.status == "firing" and new.external_url == POD_B
    assert new.incident_id == 2 and len(alert_messages(bot)) == 2

    await send(bot, _from(POD_A, [_alert()]))
    old_again, new = await groups(bot)
    assert old_again.notifications == 2 and new.notifications == 2
    assert len(alert_messages(bot)) == 2 and await incident_count(bot) == 2


async def test_a_resolved_group_whose_incident_is_open_takes_the_other_replicas_refire(bot: BotHarness) -> None:
    """Resolved by A while its incident is still open, the alert fires again at B: the incident's group
    takes it (as A's refire would), not a new card and a second incident."""
    await send(bot, _from(POD_A, [_alert()]))
    await send(bot, _from(POD_A, [_alert(status="resolved")]))
    await send(bot, _from(POD_B, [_alert()]))
    [group] = await groups(bot)
    assert group.status == "firing" and group.incident_id == 1 and group.notifications == 3
    assert await incident_count(bot) == 1 and len(alert_messages(bot)) == 1


async def test_the_other_replicas_late_resolve_of_an_earlier_outage_leaves_the_group_firing(bot: BotHarness) -> None:
    """B's resolve of the last outage lands after A's firing of this one: it joins A's group, whose alert
    started after that resolve ended, so the group still fires (as A's own late resolve would leave it)."""
    await send(bot, _from(POD_A, [_alert(starts_at="2026-11-20T10:00:00Z")]))
    await send(bot, _from(POD_B, [_alert(status="resolved", ends_at="2026-11-20T09:10:00Z")]))
    [group] = await groups(bot)
    assert group.status == "firing" and group.notifications == 2 and len(alert_messages(bot)) == 1


async def test_both_replicas_delivering_at_once_write_the_one_group(bot: BotHarness) -> None:
    """A's repeat and B's resolve at the same instant: both land on A's group (its revision orders them),
    neither makes a group or card of its own."""
    await send(bot, _from(POD_A, [_alert()]))
    responses = await asyncio.gather(
        send(bot, _from(POD_A, [_alert()]), settle=False),
        send(bot, _from(POD_B, [_alert(status="resolved")]), settle=False),
    )
    assert [r.status_code for r in responses] == [200, 200]
    await bot.settle()
    await processor(bot).idle()
    [group] = await groups(bot)
    assert group.notifications == 3 and len(alert_messages(bot)) == 1 and await incident_count(bot) == 1
