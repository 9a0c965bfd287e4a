"""auto_declare rules, dedupe by group key and fingerprint, and resolved notifications."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.alerts import claims
from bot.alerts import service as alert_service
from bot.alerts.models import DeclareState
from bot.alerts.payloads import parse
from tests.alerts import payloads as p
from tests.alerts.helpers import (
    API,
    AUTO,
    action_ids,
    alert_messages,
    groups,
    incident_count,
    processor,
    rendered,
    send,
)
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, start_bot

# --- auto declare and dedupe ----------------------------------------------------------------------------


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return {**AUTO, "services": API}


async def test_auto_declare_rule_declares_at_once(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="critical", service="api")]))
    incident = await bot.incident(1)
    assert incident.severity == "P1"
    assert incident.service == "api"
    assert incident.declared_by == "alertmanager"
    assert incident.title == "HighErrorRate: Checkout error rate above 5%"
    assert "Runbook: https://runbooks.example.com/5xx" in incident.description
    channel = bot.fake.channels[incident.channel_id or ""]
    assert channel.name.startswith("inc-1-higherrorrate")
    [message] = alert_messages(bot)
    text = rendered(message)
    assert "INC-1" in text and "declared automatically" in text and "severity=critical → P1" in text
    assert "alert_declare" not in action_ids(message)
    events = await bot.timeline(1)
    alert_events = [e for e in events if e.kind == "alert"]
    assert alert_events and alert_events[0].data["how"] == "auto"


async def test_warning_alerts_do_not_auto_declare(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="warning")], group_key="warn"))
    assert await incident_count(bot) == 0
    assert action_ids(alert_messages(bot)[0]) == ["alert_declare"]


async def test_repeats_go_to_the_incident_timeline_never_a_second_incident(bot: BotHarness) -> None:
    body = p.alertmanager([p.am_alert(severity="critical")])
    await send(bot, body)
    await send(bot, body)
    second = p.am_alert(severity="critical", instance="api-2:9090")
    await send(bot, p.alertmanager([p.am_alert(severity="critical"), second]))
    assert await incident_count(bot) == 1
    assert len(alert_messages(bot)) == 1
    alert_events = [e for e in await bot.timeline(1) if e.kind == "alert"]
    # the link, then the two later deliveries
    assert len(alert_events) == 3
    assert "1 new" in alert_events[-1].text
    incident = await bot.incident(1)
    channel_texts = [m.text for m in bot.fake.messages(incident.channel_id or "")]
    assert any("1 more alert firing" in t for t in channel_texts)


async def test_concurrent_deliveries_of_a_new_group_make_one_incident(bot: BotHarness) -> None:
    body = p.alertmanager([p.am_alert(severity="critical")], group_key="race")
    responses = await asyncio.gather(*(send(bot, body, settle=False) for _ in range(6)))
    await bot.settle()
    await processor(bot).idle()
    assert [r.status_code for r in responses] == [200] * 6
    assert await incident_count(bot) == 1
    assert len(await groups(bot)) == 1
    assert len(alert_messages(bot)) == 1
    [group] = await groups(bot)
    assert group.notifications == 6 and not group.pending


async def test_same_fingerprint_in_another_group_joins_the_open_incident(bot: BotHarness) -> None:
    alert = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([alert], group_key="route-a"))
    await send(bot, p.alertmanager([alert], group_key="route-b"))
    assert await incident_count(bot) == 1
    first, second = await groups(bot)
    assert first.incident_id == second.incident_id == 1
    assert second.declared_how == "fingerprint"
    assert "already part of it" in rendered(alert_messages(bot)[1])


async def test_resolved_is_recorded_and_offers_to_resolve(bot: BotHarness) -> None:
    firing = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([firing]))
    await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]))
    incident = await bot.incident(1)
    assert incident.is_open  # the bot never resolves on its own
    events = [e for e in await bot.timeline(1) if e.kind == "alert"]
    assert events[-1].key and "resolved" in events[-1].text
    offer = bot.fake.messages(incident.channel_id or "")[-1]
    assert action_ids(offer) == ["alert_resolve_incident"]
    assert "has resolved" in rendered(offer)

    await bot.click("alert_resolve_incident", "1", user="U0BOB", channel=incident.channel_id, message_ts=offer.ts)
    incident = await bot.incident(1)
    assert not incident.is_open and incident.resolved_by == "U0BOB"
    assert "alert cleared" in incident.resolution
    assert "You resolved INC-1" in bot.last_reply()
    # the alert message follows the incident
    assert "resolved" in rendered(alert_messages(bot)[0])

    await bot.click("alert_resolve_incident", "1", user="U0BOB", channel=incident.channel_id, message_ts=offer.ts)
    assert "resolved already" in bot.last_reply()


async def test_alert_still_firing_after_the_incident_is_resolved_does_not_redeclare(bot: BotHarness) -> None:
    body = p.alertmanager([p.am_alert(severity="critical")])
    await send(bot, body)
    await bot.command("resolve fixed", user="U0ALICE", channel=(await bot.incident(1)).channel_id or "")
    assert not (await bot.incident(1)).is_open
    await send(bot, body)  # Alertmanager's repeat_interval
    assert await incident_count(bot) == 1
    assert [e.kind for e in await bot.timeline(1)].count("alert") == 2


async def test_a_new_alert_in_a_group_still_firing_after_its_incident_was_resolved_is_declared(
    bot: BotHarness,
) -> None:
    """INC-1 was resolved while its group still fired (Alertmanager says resolved a group_interval later, a
    group by alertname may never clear). A new critical alert joining the group was said only in INC-1's
    closed channel: no incident, no page, and the card offered no Declare."""
    first = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([first]))
    await bot.command("resolve fixed", user="U0ALICE", channel=(await bot.incident(1)).channel_id or "")
    await send(bot, p.alertmanager([first]))  # a repeat of what INC-1 was about declares nothing
    assert await incident_count(bot) == 1

    second = p.am_alert(severity="critical", instance="api-2:9090", starts_at="2026-11-20T12:00:00Z")
    await send(bot, p.alertmanager([first, second]))
    assert await incident_count(bot) == 2
    [group] = await groups(bot)
    assert group.incident_id == 2 and group.episode == 2 and group.status == "firing"
    assert len(alert_messages(bot)) == 2  # the new episode's own card


async def test_a_new_firing_after_resolution_declares_a_new_incident(bot: BotHarness) -> None:
    firing = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([firing]))
    await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]))
    await bot.command("resolve fixed", user="U0ALICE", channel=(await bot.incident(1)).channel_id or "")
    await send(bot, p.alertmanager([dict(firing, startsAt="2026-11-20T12:00:00Z")]))
    assert await incident_count(bot) == 2
    [group] = await groups(bot)
    assert group.incident_id == 2 and group.episode == 2


async def test_two_replicas_receiving_the_same_group_make_one_incident_and_one_message(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Alertmanager HA pairs both deliver; behind a load balancer each copy may reach another replica."""
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, config=AUTO)
    one, stop_one = await start_bot(fake=fake_slack, settings=settings)
    two, stop_two = await start_bot(fake=fake_slack, settings=settings)
    for bot in (one, two):
        # The second start's loop task would count as the first harness's unfinished work.
        await processor(bot).stop_retry_loop()
    try:
        body = p.alertmanager([p.am_alert(severity="critical")], group_key="ha-pair")
        responses = await asyncio.gather(*(send(bot, body, settle=False) for bot in (one, two, one, two)))
        assert [r.status_code for r in responses] == [200] * 4
        for bot in (one, two):
            await bot.settle()
            await processor(bot).idle()
        assert await incident_count(one) == 1
        assert len(alert_messages(one)) == 1
        [group] = await groups(one)
        assert group.notifications == 4 and group.incident_id == 1 and not group.pending
        assert len(fake_slack.calls_to("conversations.create")) == 1
    finally:
        await stop_two()
        await stop_one()


async def test_the_alert_message_follows_the_incident(bot: BotHarness) -> None:
    await send(bot, p.alertmanager([p.am_alert(severity="critical")]))
    channel = (await bot.incident(1)).channel_id or ""
    assert "P1 · investigating" in rendered(alert_messages(bot)[0])
    await bot.command("sev P2", channel=channel)
    await bot.command("update identified bad deploy", channel=channel)
    assert "P2 · identified" in rendered(alert_messages(bot)[0])


async def test_an_alert_that_flaps_while_its_incident_is_being_declared_makes_one_incident(bot: BotHarness) -> None:
    """The declaration takes as long as its channel setup (minutes when Slack throttles), and until
    it links the incident the group has none: a resolve and a new firing meanwhile started a new
    episode, and its sync declared a second incident for the same alert (everyone paged twice)."""
    firing = p.am_alert(severity="critical")
    gate = bot.fake.hold("conversations.create")
    try:
        await send(bot, p.alertmanager([firing]), settle=False)
        for _ in range(500):
            if bot.fake.held:
                break
            await asyncio.sleep(0.01)
        assert bot.fake.held, "the declaration never reached conversations.create"
        await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]), settle=False)
        await send(bot, p.alertmanager([dict(firing, startsAt="2026-11-20T09:12:00Z")]), settle=False)
        await asyncio.sleep(0.3)  # the syncs those deliveries started
    finally:
        gate.set()
    await bot.settle()
    await processor(bot).idle()  # and the syncs the retry loop picked up
    assert await incident_count(bot) == 1
    [group] = await groups(bot)
    assert group.incident_id == 1 and group.episode == 1 and group.status == "firing"


async def test_a_declare_claimed_while_a_delivery_is_stored_is_not_undone(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A person's Declare click lands between a delivery's read of the group and its write."""
    warning = p.am_alert(severity="warning")
    await send(bot, p.alertmanager([warning], group_key="warn"))
    await send(bot, p.alertmanager([dict(warning, status="resolved", endsAt="2026-11-20T09:10:00Z")], group_key="warn"))
    [group] = await groups(bot)
    assert (group.status, group.declare_state, group.incident_id) == ("resolved", DeclareState.NONE, None)

    real_get_group = alert_service.get_group
    clicked: list[bool] = []

    async def get_group_then_click(session: Any, *, group_id: int) -> Any:
        read = await real_get_group(session, group_id=group_id)
        if not clicked:
            clicked.append(True)
            async with bot.deps.db.session() as other:
                assert await claims.claim_declare(
                    other, group_id=group_id, states=[DeclareState.NONE, DeclareState.WANTED], now=bot.deps.clock.now()
                )
        return read

    monkeypatch.setattr(alert_service, "get_group", get_group_then_click)
    note = parse("alertmanager", p.alertmanager([dict(warning, startsAt="2026-11-20T09:12:00Z")], group_key="warn"))
    await processor(bot).ingest(note)  # fires again: a new episode, were it not being declared
    monkeypatch.undo()
    [group] = await groups(bot)
    assert clicked and group.declare_state == DeclareState.CLAIMED and group.episode == 1


async def test_an_alert_that_clears_again_while_its_offer_is_posted_is_offered_again(bot: BotHarness) -> None:
    firing = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([firing]))
    channel = (await bot.incident(1)).channel_id or ""

    def offers() -> list[Any]:
        return [m for m in bot.fake.messages(channel) if "alert_resolve_incident" in action_ids(m)]

    gate = bot.fake.hold("chat.postMessage", lambda args: args.get("channel") == channel)
    try:
        await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]), settle=False)
        for _ in range(500):
            if bot.fake.held:
                break
            await asyncio.sleep(0.01)
        assert bot.fake.held, "the first offer never went out"
        # While it is on its way, the alert fires and clears again.
        await send(bot, p.alertmanager([dict(firing, startsAt="2026-11-20T09:12:00Z")]), settle=False)
        await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:14:00Z")]), settle=False)
    finally:
        gate.set()
    await bot.settle()
    await processor(bot).idle()
    assert len(offers()) == 2


async def test_an_alert_that_fires_again_after_it_cleared_is_said_in_the_incident_channel(bot: BotHarness) -> None:
    """The channel was offered to resolve when the alert cleared; firing again, it must say so there too,
    or the responders see only the offer (the card in #alerts is not where they are)."""
    firing = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([firing]))
    channel = (await bot.incident(1)).channel_id or ""
    await send(bot, p.alertmanager([dict(firing, status="resolved", endsAt="2026-11-20T09:10:00Z")]))
    assert action_ids(bot.fake.messages(channel)[-1]) == ["alert_resolve_incident"]
    await send(bot, p.alertmanager([dict(firing, startsAt="2026-11-20T09:12:00Z")]))
    last = bot.fake.messages(channel)[-1]
    assert "firing" in rendered(last) and "HighErrorRate" in rendered(last), rendered(last)


async def test_an_alert_that_cleared_before_it_could_be_declared_does_not_say_declaring(bot: BotHarness) -> None:
    """Slack held the group's card (a storm): meanwhile the alert turned critical and cleared. Nothing is
    declared for an alert that cleared, yet its card said "Declaring an incident…" for good."""
    gate = bot.fake.hold("chat.postMessage", lambda args: args.get("channel") == "C0ALERTS")
    critical = p.am_alert(severity="critical")
    cleared = dict(critical, status="resolved", endsAt="2026-11-20T09:10:00Z")
    try:
        await send(bot, p.alertmanager([p.am_alert(severity="warning")]), settle=False)
        for _ in range(500):
            if bot.fake.held:
                break
            await asyncio.sleep(0.01)
        assert bot.fake.held, "the card never went out"
        await send(bot, p.alertmanager([critical]), settle=False)
        await send(bot, p.alertmanager([cleared]), settle=False)
    finally:
        gate.set()
    await bot.settle()
    await processor(bot).idle()
    [group] = await groups(bot)
    assert group.status == "resolved" and not group.pending and await incident_count(bot) == 0
    [card] = alert_messages(bot)
    assert "RESOLVED" in rendered(card) and "Declaring" not in rendered(card)
