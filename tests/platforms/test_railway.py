"""Railway specifics: the schema check of the fake itself, token kinds, GraphQL errors, what is live."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace

import httpx
import pytest

from bot.exceptions import PlatformAuthError, PlatformError, PlatformUnsure
from bot.platforms.base import DeployStatus, rollback_candidates
from bot.platforms.follow import Progress, follow
from tests.fakes.railway import FakeRailway
from tests.fakes.webhook import Fault
from tests.platforms.helpers import FakeTimer, client_for


@pytest.fixture
async def fake() -> AsyncIterator[FakeRailway]:
    server = FakeRailway()
    await server.start()
    yield server
    await server.stop()


async def _post(
    http: httpx.AsyncClient, fake: FakeRailway, query: str, variables: dict | None = None
) -> httpx.Response:
    return await http.post(
        fake.api_url,
        json={"query": query, "variables": variables or {}},
        headers={"Authorization": f"Bearer {fake.account_token}"},
    )


async def test_the_fake_refuses_a_selection_on_a_boolean_mutation(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    response = await _post(http, fake, 'mutation { deploymentRestart(id: "x") { id } }')

    assert response.status_code == 400
    assert "must not have a selection" in response.json()["errors"][0]["message"]
    assert fake.violations


async def test_the_fake_refuses_deployment_redeploy_without_a_selection(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    """`deploymentRedeploy` answers a `Deployment`, not a `Boolean!`: asked like the other mutations, it fails."""
    response = await _post(http, fake, 'mutation { deploymentRedeploy(id: "x") }')

    assert response.status_code == 400
    assert "must have a selection" in response.json()["errors"][0]["message"]
    assert fake.violations


async def test_the_fake_refuses_unknown_fields_and_bad_variables(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    bad_field = await _post(http, fake, "query { deployments(input: {}) { edges { node { id colour } } } }")
    bad_var = await _post(
        http,
        fake,
        "query Q($first: Int) { deployments(input: {}, first: $first) { edges { node { id } } } }",
        {"first": "ten"},
    )

    assert bad_field.status_code == 400
    assert "colour" in bad_field.json()["errors"][0]["message"]
    assert "errors" in bad_var.json()
    assert len(fake.violations) == 2


async def test_auto_token_kind_falls_back_to_the_project_header_and_remembers(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    fake.seed(["v1", "v2"])
    client = client_for("railway", fake, http, token=fake.project_token)

    await client.list_deployments()
    await client.list_deployments()

    assert fake.auth_kinds == ["project", "project"]
    assert client.token_kind == "project"  # type: ignore[attr-defined]


async def test_project_token_kind_sends_only_the_project_header(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    fake.seed(["v1"])
    client = client_for("railway", fake, http, token=fake.project_token, token_kind="project")
    await client.current_deployment()

    assert "Authorization" not in {k.title() for k in fake.requests[-1].headers}
    assert fake.requests[-1].headers.get("Project-Access-Token") == fake.project_token


async def test_a_token_refused_both_ways_says_so(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    client = client_for("railway", fake, http, token="nope")
    with pytest.raises(PlatformAuthError, match="both as an account/team token and as a project token"):
        await client.current_deployment()


async def test_graphql_errors_become_platform_errors(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    client = client_for("railway", fake, http)
    with pytest.raises(PlatformError, match="Railway said: Deployment not found"):
        await client.deployment_status("00000000-0000-0000-0000-000000000000")


async def test_the_live_deployment_is_the_newest_that_went_live_not_a_failed_build(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    fake.seed(["v1", "v2", "v3"], statuses=["REMOVED", "SUCCESS", "FAILED"])
    client = client_for("railway", fake, http)

    current = await client.current_deployment()
    deployments = await client.list_deployments()

    assert current is not None and current.id == fake.id_of("v2")
    assert deployments[0].status is DeployStatus.FAILED
    assert [d.id for d in rollback_candidates(deployments, current)] == [fake.id_of("v1")]


async def test_a_crashed_live_deployment_is_restarted_in_place(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    fake.seed(["v1", "v2"], statuses=["REMOVED", "CRASHED"])
    client = client_for("railway", fake, http)

    handle = await client.restart()
    result = await follow(client, handle, deadline=60, timer=FakeTimer())

    assert handle.id == fake.id_of("v2")
    assert result.succeeded
    assert fake.restarts == 1


async def test_restart_with_nothing_live_redeploys_the_service(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    fake.seed(["v1"], statuses=["FAILED"])
    client = client_for("railway", fake, http)

    handle = await client.restart()
    result = await follow(client, handle, deadline=60, timer=FakeTimer())

    assert any("serviceInstanceRedeploy" in doc for doc, _ in fake.documents)
    assert len(fake.deployments) == 2 and handle.id == fake.deployments[0]["id"]
    assert result.succeeded
    assert fake.live_version() == "v1"


async def test_restart_naming_what_to_redeploy_redeploys_exactly_that_one(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    """Nothing live and v1 named: v1 is redeployed even though v2 is newer by now."""
    fake.seed(["v1", "v2"], statuses=["FAILED", "FAILED"])
    client = client_for("railway", fake, http)
    v1 = fake.id_of("v1")

    handle = await client.restart(v1)
    result = await follow(client, handle, deadline=60, timer=FakeTimer())

    assert [variables for doc, variables in fake.documents if "mutation" in doc] == [{"id": v1}]
    assert not fake.violations
    assert handle.id == fake.deployments[0]["id"] != v1 and handle.meta["redeploy_of"] == v1
    assert result.succeeded and fake.live_version() == "v1"


async def test_documents_use_variables_not_string_interpolation(fake: FakeRailway, http: httpx.AsyncClient) -> None:
    fake.seed(["v1", "v2"])
    client = client_for("railway", fake, http)
    await client.rollback(None)

    for document, variables in fake.documents:
        assert fake.project_id not in document
        assert variables


async def test_a_rollback_finds_its_deployment_when_railway_lists_it_seconds_later(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    """The mutation answers before Railway lists the new deployment; one look at once reported a failure."""
    fake.seed(["v1", "v2"])
    fake.appear_after = 3
    old = fake.id_of("v1")
    timer = FakeTimer()
    client = client_for("railway", fake, http, timer=timer)

    handle = await client.rollback(None)

    assert handle.id == fake.deployments[0]["id"] != old and handle.meta["rollback_to"] == old
    assert timer.sleeps == [0.5, 1.0, 2.0]  # waited, backing off, and stopped once it was there
    result = await follow(client, handle, deadline=60, timer=FakeTimer())
    assert result.succeeded and fake.live_version() == "v1"


async def test_a_rollback_whose_deployment_never_appears_says_where_to_look(
    fake: FakeRailway, http: httpx.AsyncClient
) -> None:
    fake.seed(["v1", "v2"])
    fake.appear_after = None
    timer = FakeTimer()
    client = client_for("railway", fake, http, timer=timer)

    with pytest.raises(PlatformError, match="lists no new deployment yet"):
        await client.rollback(None)
    assert sum(timer.sleeps) >= 15  # looked for it over seconds, not once


LOOK_FAILS = {
    "an error in Railway's words": Fault(
        200, {}, {"errors": [{"message": "Problem processing request"}], "data": None}
    ),
    "a 429": Fault(429, {"Retry-After": "5"}, {"errors": [{"message": "rate limited"}]}),
    "a throttle inside a 200": Fault(
        200, {"Retry-After": "5"}, {"errors": [{"message": "Rate limit exceeded"}], "data": None}
    ),
}


@pytest.mark.parametrize("failure", list(LOOK_FAILS))
@pytest.mark.parametrize("action", ["rollback", "redeploy"])
async def test_a_look_for_the_new_deployment_that_railway_refuses_is_not_a_refusal_of_the_action(
    fake: FakeRailway, http: httpx.AsyncClient, action: str, failure: str
) -> None:
    """Railway took the mutation, then answered the look for the deployment it made with an error in its own
    words: that error left the client as a refusal ("Railway refused the rollback: ..."), and the person ran
    it again. Every look after the mutation is one more look that found nothing, and never a rate limit the
    bot could answer by sending the mutation again (the redeploy with nothing live reads after its write too)."""
    fake.seed(["v1", "v2"], statuses=["REMOVED", "SUCCESS"] if action == "rollback" else ["FAILED", "FAILED"])
    fault = replace(LOOK_FAILS[failure], body_contains="query Deployments(")
    fake.appear_after = None
    fake.before_next_mutation = lambda: fake.inject(fault)
    client = client_for("railway", fake, http)

    with pytest.raises(PlatformUnsure) as caught:
        await (client.rollback(None) if action == "rollback" else client.restart())

    assert "accepted the" in str(caught.value) and "Railway dashboard" in str(caught.value)
    assert len([d for d, _ in fake.documents if "mutation" in d]) == 1


@pytest.mark.parametrize(("status", "said"), [("NEEDS_APPROVAL", "approve this deployment"), ("WAITING", "WAITING")])
async def test_a_deployment_held_before_its_build_is_followed_with_railways_reason(
    fake: FakeRailway, http: httpx.AsyncClient, status: str, said: str
) -> None:
    """Both are "queued" in the common vocabulary; the note says what Railway waits for, in the progress
    shown and in the deployment the follow ends with."""
    fake.seed(["v1", "v2"])
    fake.hold_next_in(status)
    client = client_for("railway", fake, http)
    notes: list[str] = []

    async def seen(update: Progress) -> None:
        notes.append(update.note)

    result = await follow(client, await client.rollback(None), deadline=60, timer=FakeTimer(), on_progress=seen)

    assert result.timed_out and result.status is DeployStatus.QUEUED
    assert said in result.deployment.meta["note"] and any(said in n for n in notes), notes
