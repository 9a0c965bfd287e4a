"""Two replicas get the same delivery, or two people race on the same incident: it happens once."""

from __future__ import annotations

import asyncio

import pytest

from bot.incidents.models import Incident, Status
from bot.timeline.models import Kind, TimelineEvent
from tests import slack_requests as req
from tests.fault.support import count
from tests.harness import SECRET
from tests.replicas.conftest import REPLICAS_ONLY, Replicas

pytestmark = REPLICAS_ONLY


def _inc_channels(replicas: Replicas) -> list[str]:
    return sorted(c.name for c in replicas.fake.channels.values() if c.name.startswith("inc-"))


async def test_same_event_delivered_to_both_replicas_is_stored_once(replicas: Replicas) -> None:
    incident = await replicas.a.declare()
    assert incident.channel_id
    for n in range(5):
        message = {
            "type": "message",
            "channel": incident.channel_id,
            "user": "U0BOB",
            "text": f"m{n}",
            "ts": f"1700000000.{n:06d}",
        }
        body, headers = req.event_callback(message, secret=SECRET, event_id=f"EvBoth{n}")
        retry_body, retry_headers = req.event_callback(message, secret=SECRET, event_id=f"EvBoth{n}", retry_num=1)
        results = await asyncio.gather(
            replicas.a.post(body, headers),
            replicas.b.post(body, headers),
            replicas.b.post(retry_body, retry_headers),
        )
        assert {r.status_code for r in results} == {200}
    await replicas.settle()
    texts = [e.text for e in await replicas.a.timeline(incident.id or 0) if e.kind == Kind.MESSAGE]
    assert texts == [f"m{n}" for n in range(5)]


async def test_same_slash_command_on_both_replicas_declares_once(replicas: Replicas) -> None:
    for n in range(3):
        body, headers = req.slash_command(
            "/incident",
            f"declare P1 Outage {n}",
            secret=SECRET,
            response_url=replicas.fake.response_url(f"d{n}"),
        )
        assert {r.status_code for r in await replicas.both(body, headers)} == {200}
    assert await count(replicas.a.deps, Incident) == 3
    assert _inc_channels(replicas) == ["inc-1-outage-0", "inc-2-outage-1", "inc-3-outage-2"]
    assert len(replicas.fake.responses) == 3, "each declare is answered once"


async def test_same_button_click_on_both_replicas_acts_once(replicas: Replicas) -> None:
    incident = await replicas.a.declare()
    body, headers = req.block_actions(
        "incident_ack",
        str(incident.id),
        secret=SECRET,
        user_id="U0BOB",
        channel_id=incident.channel_id,
        response_url=replicas.fake.response_url("ack-both"),
    )
    await replicas.both(body, headers)
    acks = [e for e in await replicas.a.timeline(incident.id or 0) if e.kind == Kind.ACK]
    assert len(acks) == 1


async def _at_once(replicas: Replicas, bob: str, carol: str) -> tuple[Incident, str]:
    """Bob and Carol run a command in a new incident's channel at once, on replicas a and b.

    Returns the incident as it is afterwards, and its channel.
    """
    incident = await replicas.a.declare()
    where = incident.channel_id or ""
    await asyncio.gather(
        replicas.a.command(bob, user="U0BOB", channel=where, settle=False),
        replicas.b.command(carol, user="U0CAROL", channel=where, settle=False),
    )
    await replicas.settle()
    return await replicas.a.incident(incident.id or 0), where


async def test_two_people_acknowledge_at_once_on_two_replicas(replicas: Replicas) -> None:
    after, where = await _at_once(replicas, "ack", "ack")
    assert after.acknowledged_by in {"U0BOB", "U0CAROL"}
    acks = [e for e in await replicas.a.timeline(after.id or 0) if e.kind == Kind.ACK]
    assert sorted(bool(e.data.get("first")) for e in acks) == [False, True]
    notices = [m for m in replicas.fake.messages(where) if "acknowledged" in m.text and m.ephemeral_to is None]
    assert len(notices) == 1, [m.text for m in notices]


async def test_two_people_resolve_at_once_on_two_replicas(replicas: Replicas) -> None:
    after, where = await _at_once(replicas, "resolve rolled back", "resolve failover")
    assert after.status == Status.RESOLVED
    resolved = [e for e in await replicas.a.timeline(after.id or 0) if e.kind == Kind.RESOLVED]
    assert len(resolved) == 1 and resolved[0].actor == after.resolved_by
    assert after.resolution == {"U0BOB": "rolled back", "U0CAROL": "failover"}[after.resolved_by or ""]
    notices = [m for m in replicas.fake.messages(where) if m.text.startswith("✅") and m.ephemeral_to is None]
    assert len(notices) == 1, [m.text for m in notices]
    uploads = [m for m in replicas.fake.messages(where) if m.files]
    assert len(uploads) <= 1, "one post-mortem draft, not one per replica"
    replies = replicas.a.replies()
    assert any("resolved already" in r for r in replies), replies


async def test_retry_setup_on_both_replicas_creates_one_channel(replicas: Replicas) -> None:
    replicas.fake.server_error("conversations.create", count=1)
    await replicas.a.command("declare P1 Checkout is down")
    assert (await replicas.a.incident(1)).channel_id is None
    await asyncio.gather(
        replicas.a.click("incident_retry_setup", "1", user="U0ALICE", settle=False),
        replicas.b.click("incident_retry_setup", "1", user="U0BOB", settle=False),
    )
    await replicas.settle()
    incident = await replicas.a.incident(1)
    assert _inc_channels(replicas) == [incident.channel_name]
    assert incident.setup_error is None and incident.summary_ts


@pytest.mark.parametrize("declares", [20])
async def test_concurrent_declares_split_across_replicas_get_distinct_numbers(
    replicas: Replicas, declares: int
) -> None:
    await asyncio.gather(
        *(
            (replicas.a if n % 2 else replicas.b).command("declare P2 Same title", user="U0ALICE", settle=False)
            for n in range(declares)
        )
    )
    await replicas.settle()
    async with replicas.a.deps.db.session() as session:
        from sqlmodel import select

        incidents = list((await session.exec(select(Incident))).all())
    assert sorted(i.id or 0 for i in incidents) == list(range(1, declares + 1))
    assert all(i.channel_id and i.setup_error is None for i in incidents)
    assert len(set(_inc_channels(replicas))) == declares
    assert await count(replicas.a.deps, TimelineEvent, TimelineEvent.kind == Kind.DECLARED) == declares
