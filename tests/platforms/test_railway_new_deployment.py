"""Which deployment a Railway rollback (or a redeploy with nothing live) made, when another deploy is listed too.

Railway lists the deployment a rollback made only after a delay, and CI's may be listed first, alone: the bot
followed that one and reported its outcome as the rollback's. A deployment created before the mutation reached
Railway (the answer's `Date` against the deployment's `createdAt`, both Railway's clock) is not followed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from bot.exceptions import PlatformUnsure
from bot.platforms.base import Deployment, Platform
from bot.platforms.follow import follow
from bot.platforms.railway_answers import CLOCK_MARGIN, sent_at
from tests.fakes.railway import FakeRailway
from tests.platforms.helpers import FakeTimer, client_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeRailway]:
    server = FakeRailway()
    await server.start()
    yield server
    await server.stop()
    assert not server.violations, server.violations


def _seed(fake: FakeRailway, action: str) -> None:
    fake.seed(["v1", "v2"], statuses=["REMOVED", "SUCCESS"] if action == "rollback" else ["FAILED", "FAILED"])


async def _act(client: Platform, action: str) -> Deployment:
    return await (client.rollback(None) if action == "rollback" else client.restart())


def _ci_deploys_as_the_mutation_arrives(fake: FakeRailway) -> list[str]:
    """CI's deployment, made just before the mutation reaches Railway and listed at once."""
    ci: list[str] = []
    fake.before_next_mutation = lambda: ci.append(fake.deploy("v4"))
    return ci


@pytest.mark.parametrize("action", ["rollback", "redeploy"])
async def test_a_ci_deployment_listed_first_alone_is_not_taken_for_the_actions(
    fake: FakeRailway, http: httpx.AsyncClient, action: str
) -> None:
    _seed(fake, action)
    ci = _ci_deploys_as_the_mutation_arrives(fake)  # listed at the first look after the mutation
    fake.appear_after = 1  # the action's own deployment only at the second
    timer = FakeTimer()
    client = client_for("railway", fake, http, timer=timer)

    handle = await _act(client, action)

    made = fake.deployments[0]
    assert made["id"] != ci[0]
    assert handle.id == made["id"], "followed CI's deployment as the action's"
    assert handle.unsure_which == ""  # CI's was made before the action was sent: nothing to doubt
    assert timer.sleeps == [0.5]  # looked again for the action's own, and stopped once it was listed
    result = await follow(client, handle, deadline=60, timer=FakeTimer())
    assert result.succeeded and result.deployment.id == made["id"]


async def test_a_rollback_whose_deployment_is_never_listed_does_not_follow_the_ci_one(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    _seed(fake, "rollback")
    ci = _ci_deploys_as_the_mutation_arrives(fake)
    fake.appear_after = None
    timer = FakeTimer()
    client = client_for("railway", fake, http, timer=timer)

    with pytest.raises(PlatformUnsure) as caught:
        await client.rollback(None)

    said = str(caught.value)
    assert f"lists no deployment made after it yet, only {ci[0]} (release v4)" in said, said
    assert "which the bot did not follow" in said and "Railway dashboard" in said
    assert 15 <= sum(timer.sleeps) <= 20  # a bounded wait for the rollback's own, on the injected timer
    assert not [d for d, _ in fake.documents if d.lstrip().startswith("query Deployment(")]  # followed nothing


async def test_a_lone_deployment_whose_time_cannot_be_compared_is_followed_and_said_so(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    """Without a readable `Date` the bot cannot show that the one new deployment is the rollback's."""
    _seed(fake, "rollback")
    fake.send_date = False
    client = client_for("railway", fake, http)

    handle = await client.rollback(None)

    assert handle.id == fake.deployments[0]["id"]
    assert handle.unsure_which.startswith(
        f"could not tell the rollback's deployment apart: followed {handle.id} (release v1)"
    ), handle.unsure_which


async def test_a_deployment_created_in_the_same_moment_is_still_named_not_dropped(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    """Made within the clocks' margin of the mutation: it may be the rollback's, so it is never left out."""
    _seed(fake, "rollback")
    fake.tick = timedelta(seconds=1)
    ci = _ci_deploys_as_the_mutation_arrives(fake)
    fake.appear_after = 0
    client = client_for("railway", fake, http)

    handle = await client.rollback(None)

    assert handle.id == fake.deployments[0]["id"] != ci[0]
    assert f"at the same moment ({ci[0]} (release v4))" in handle.unsure_which, handle.unsure_which


def test_the_moment_sent_is_the_answers_date_less_the_round_trip_and_the_margin() -> None:
    answered = datetime(2026, 12, 7, 3, 0, 10, tzinfo=UTC)

    sent = sent_at("Mon, 07 Dec 2026 03:00:10 GMT", round_trip=1.5)

    assert sent == answered - timedelta(seconds=1.5) - CLOCK_MARGIN
    assert sent_at("", round_trip=0) is None and sent_at("yesterday", round_trip=0) is None
    assert sent_at(None, round_trip=0) is None
