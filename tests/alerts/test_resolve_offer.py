"""The offer to resolve an incident once its alerts cleared: only when all of them did, and never lost
to a resolve that arrives while the incident is being declared."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import update

from bot.alerts import claims
from bot.alerts.models import AlertGroup, AlertResolveOffer
from bot.alerts.payloads import parse
from bot.incidents import service as incident_service
from tests.alerts import payloads as p
from tests.alerts.helpers import AUTO, action_ids, groups, kill_sync_in_slack_call, processor, rendered, send
from tests.fakes.slack_api import Message
from tests.harness import BotHarness

ROUTE_A = '{}/{severity="critical"}:{alertname="HighErrorRate"}'
ROUTE_B = '{}/{team="checkout"}:{}'


@pytest.fixture
def bot_config() -> dict[str, Any]:
    return AUTO


def _offers(bot: BotHarness, channel: str) -> list[Message]:
    return [m for m in bot.fake.messages(channel) if "alert_resolve_incident" in action_ids(m)]


async def _two_groups(bot: BotHarness) -> tuple[dict[str, Any], dict[str, Any], str]:
    """INC-1 from route A's alert; route B holds the same alert (so it joins INC-1) and a latency alert."""
    errors = p.am_alert(severity="critical")
    latency = p.am_alert("HighLatency", instance="api-2:9090", summary="Checkout p99 above 2s")
    await send(bot, p.alertmanager([errors], group_key=ROUTE_A))
    await send(bot, p.alertmanager([errors, latency], group_key=ROUTE_B, group_labels={}))
    assert [g.incident_id for g in await groups(bot)] == [1, 1]
    return errors, latency, (await bot.incident(1)).channel_id or ""


def _resolved(alert: dict[str, Any]) -> dict[str, Any]:
    return dict(alert, status="resolved", endsAt="2026-11-20T09:10:00Z")


async def test_one_of_two_alert_groups_clearing_does_not_offer_to_resolve_the_incident(bot: BotHarness) -> None:
    """Route A cleared while route B's latency alert still fired: the channel was offered to resolve a
    burning incident. It hears what still fires; the offer comes, once, when the last group clears."""
    errors, latency, channel = await _two_groups(bot)
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    assert _offers(bot, channel) == []
    told = rendered(bot.fake.messages(channel)[-1])
    assert "has resolved" in told and "still firing for INC-1" in told
    assert "HighLatency" in told or "HighErrorRate" in told

    await send(bot, p.alertmanager([_resolved(errors), latency], group_key=ROUTE_B, group_labels={}))
    assert _offers(bot, channel) == []
    await send(bot, p.alertmanager([_resolved(errors), _resolved(latency)], group_key=ROUTE_B, group_labels={}))
    [offer] = _offers(bot, channel)
    assert "has resolved" in rendered(offer) and (await bot.incident(1)).is_open
    assert not any(g.resolve_offer_pending for g in await groups(bot))
    await processor(bot).sweep(due_only=False)  # nothing is left to offer again
    await bot.settle()
    assert len(_offers(bot, channel)) == 1


async def test_the_last_groups_offer_survives_a_failed_post_and_a_refire_still_cancels_it(bot: BotHarness) -> None:
    errors, latency, channel = await _two_groups(bot)
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    bot.fake.fail("chat.postMessage", "internal_error")  # Slack fails the offer: it waits for the retry
    await send(bot, p.alertmanager([_resolved(errors), _resolved(latency)], group_key=ROUTE_B, group_labels={}))
    assert _offers(bot, channel) == []
    await processor(bot).sweep(due_only=False)
    await bot.settle()
    assert len(_offers(bot, channel)) == 1
    await processor(bot).sweep(due_only=False)
    await bot.settle()
    assert len(_offers(bot, channel)) == 1, "the offer once, however many retries"

    # Route A fires again and clears while the offer for it is still on its way: the re-fire cancels it.
    await send(bot, p.alertmanager([errors], group_key=ROUTE_A))
    bot.fake.fail("chat.postMessage", "internal_error")
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    assert len(_offers(bot, channel)) == 1
    await send(bot, p.alertmanager([errors], group_key=ROUTE_A))
    await processor(bot).sweep(due_only=False)
    await bot.settle()
    assert len(_offers(bot, channel)) == 1
    assert not any(g.resolve_offer_pending for g in await groups(bot))


async def test_an_offer_whose_answer_was_cut_is_found_in_the_channel_not_posted_again(bot: BotHarness) -> None:
    """Slack posted the offer and the answer was lost: the claim was given back, and the retry, claiming
    afresh, did not look and posted a second offer. A lost answer now keeps the claim, so the retry looks."""
    errors, latency, channel = await _two_groups(bot)
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    bot.fake.disconnect("chat.postMessage", acted=True)  # Slack posts the offer; its answer is cut
    await send(bot, p.alertmanager([_resolved(errors), _resolved(latency)], group_key=ROUTE_B, group_labels={}))
    assert len(_offers(bot, channel)) == 1
    for _ in range(2):
        await processor(bot).sweep(due_only=False)
        await bot.settle()
    assert len(_offers(bot, channel)) == 1
    assert bot.fake.calls_to("conversations.history")
    assert not any(g.resolve_offer_pending for g in await groups(bot))


async def test_a_resolve_while_the_incident_is_being_declared_still_offers_to_resolve_it(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The alert cleared after the declare was claimed and before the incident was stored and linked:
    the group had no incident to mark, the link did not look, and INC-1 never heard it cleared."""
    reached, go = asyncio.Event(), asyncio.Event()
    real_create = incident_service.create

    async def create_when_told(*args: Any, **kwargs: Any) -> Any:
        reached.set()
        await go.wait()
        return await real_create(*args, **kwargs)

    monkeypatch.setattr(incident_service, "create", create_when_told)
    errors = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([errors]), settle=False)
    await asyncio.wait_for(reached.wait(), timeout=10)  # claimed, the incident not stored yet
    response = await send(bot, p.alertmanager([_resolved(errors)]), settle=False)
    assert response.status_code == 200
    go.set()
    await bot.settle()
    await processor(bot).idle()

    [group] = await groups(bot)
    assert group.incident_id == 1 and group.status == "resolved"
    channel = (await bot.incident(1)).channel_id or ""
    [offer] = _offers(bot, channel)
    assert "has resolved" in rendered(offer)
    assert not group.resolve_offer_pending


async def test_two_groups_clearing_at_the_same_instant_offer_to_resolve_once(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both groups of INC-1 clear together: each sync read the other as cleared before either posted,
    and both offered. The offer is claimed first, so one is posted, naming both; a later clear still
    offers again."""
    errors, latency, channel = await _two_groups(bot)
    together = asyncio.Barrier(2)
    real_read = claims.groups_for_incident

    async def read_together(*args: Any, **kwargs: Any) -> Any:
        await asyncio.wait_for(together.wait(), timeout=10)  # both clears are stored before either reads
        return await real_read(*args, **kwargs)

    monkeypatch.setattr(claims, "groups_for_incident", read_together)
    responses = await asyncio.gather(
        send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A), settle=False),
        send(
            bot,
            p.alertmanager([_resolved(errors), _resolved(latency)], group_key=ROUTE_B, group_labels={}),
            settle=False,
        ),
    )
    assert [r.status_code for r in responses] == [200, 200]
    await bot.settle()
    await processor(bot).idle()
    [offer] = _offers(bot, channel)
    assert "has resolved" in rendered(offer)
    # The one offer says both clears: the other group's sync said nothing of its own.
    assert all(g.title and g.title in offer.text for g in await groups(bot)), offer.text
    assert not any(g.resolve_offer_pending for g in await groups(bot))
    monkeypatch.setattr(claims, "groups_for_incident", real_read)
    await processor(bot).sweep(due_only=False)
    await bot.settle()
    assert len(_offers(bot, channel)) == 1

    # Route A fires again and clears: the incident's alerts cleared anew, and that is offered once more.
    await send(bot, p.alertmanager([errors], group_key=ROUTE_A))
    assert len(_offers(bot, channel)) == 1
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    assert len(_offers(bot, channel)) == 2


async def test_an_alert_firing_again_between_the_read_and_the_claim_is_not_offered_to_resolve(
    bot: BotHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Route B's sync read both groups as cleared; route A fired again before its claim. The offer to
    resolve a burning incident went out: the claim now checks, in its UPDATE, that nothing fires."""
    errors, latency, channel = await _two_groups(bot)
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    real_read = claims.groups_for_incident

    async def read_then_refire(*args: Any, **kwargs: Any) -> Any:
        read = await real_read(*args, **kwargs)
        again = dict(errors, startsAt="2026-11-20T09:12:00Z")
        note = parse("alertmanager", p.alertmanager([again], group_key=ROUTE_A))
        await asyncio.create_task(processor(bot).ingest(note))  # another request, its own connection
        return read

    monkeypatch.setattr(claims, "groups_for_incident", read_then_refire)
    await send(bot, p.alertmanager([_resolved(errors), _resolved(latency)], group_key=ROUTE_B, group_labels={}))
    monkeypatch.setattr(claims, "groups_for_incident", real_read)
    await processor(bot).idle()
    assert _offers(bot, channel) == []
    assert [g.status for g in await groups(bot)] == ["firing", "resolved"]

    # When route A clears again, that all-clear is offered.
    cleared_again = dict(errors, startsAt="2026-11-20T09:12:00Z", status="resolved", endsAt="2026-11-20T09:20:00Z")
    await send(bot, p.alertmanager([cleared_again], group_key=ROUTE_A))
    await processor(bot).sweep(due_only=False)
    await bot.settle()
    assert len(_offers(bot, channel)) == 1


async def test_still_firing_names_each_title_once_with_how_many_groups_have_it(bot: BotHarness) -> None:
    """Two groups with one title still firing were listed as if one; each title is named once, counted."""
    errors = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([errors], group_key=ROUTE_A))
    for n, extra in enumerate([p.am_alert(instance="api-2:9090"), p.am_alert(instance="api-3:9090")]):
        await send(bot, p.alertmanager([errors, extra], group_key=f"{ROUTE_B}:{n}"))
    latency = p.am_alert("HighLatency", instance="api-4:9090", summary="Checkout error rate above 5%")
    await send(bot, p.alertmanager([errors, latency], group_key=ROUTE_B, group_labels={}))
    assert [g.incident_id for g in await groups(bot)] == [1, 1, 1, 1]
    channel = (await bot.incident(1)).channel_id or ""

    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A))
    assert _offers(bot, channel) == []
    told = rendered(bot.fake.messages(channel)[-1])
    title = "HighErrorRate: Checkout error rate above 5%"
    still = f"still firing for INC-1: HighErrorRate, HighLatency: Checkout error rate above 5%, {title} (2 groups)."
    assert still in told, told


async def _die_while_offering(bot: BotHarness, *, posted: bool) -> str:
    """INC-1's only alert clears; its sync claims the offer and dies in the Slack call, after Slack posted
    the offer (`posted`) or before; then the dead process's leases lapse."""
    errors = p.am_alert(severity="critical")
    await send(bot, p.alertmanager([errors], group_key=ROUTE_A))
    channel = (await bot.incident(1)).channel_id or ""
    hold = bot.fake.hold_after if posted else bot.fake.hold
    gate = hold("chat.postMessage", lambda args: args.get("channel") == channel)
    await send(bot, p.alertmanager([_resolved(errors)], group_key=ROUTE_A), settle=False)
    await kill_sync_in_slack_call(bot, gate, drop=not posted)
    [group] = await groups(bot)
    lapsed = bot.deps.clock.now() - timedelta(minutes=3)
    async with bot.deps.db.session() as session:  # the claim as a kill -9 leaves it (a cancel gave it back)
        await session.exec(update(AlertGroup).values(sync_claimed_at=lapsed))  # type: ignore[call-overload]
        claim = update(AlertResolveOffer).values(claimed_by=group.id, claimed_at=lapsed)
        await session.exec(claim)  # type: ignore[call-overload]
        await session.commit()
    return channel


@pytest.mark.parametrize("posted", [True, False], ids=["posted", "not posted"])
async def test_an_offer_posted_before_a_crash_is_not_posted_again(bot: BotHarness, posted: bool) -> None:
    """The sync that takes over the dead one's claim looks in the channel for its offer: there, it is
    recorded as made; not there, it is posted."""
    channel = await _die_while_offering(bot, posted=posted)
    assert len(_offers(bot, channel)) == (1 if posted else 0)
    await processor(bot).sweep(due_only=False)  # the next process's start-up sweep
    await bot.settle()
    [offer] = _offers(bot, channel)
    assert offer.metadata == {"event_type": "alert_resolve_offer", "event_payload": {"incident": 1, "through": 1}}
    assert not any(g.resolve_offer_pending for g in await groups(bot))
    async with bot.deps.db.session() as session:
        row = await session.get(AlertResolveOffer, 1)
    assert row is not None and (row.offered_through, row.claimed_by) == (1, None)
    await processor(bot).sweep(due_only=False)
    await bot.settle()
    assert len(_offers(bot, channel)) == 1
