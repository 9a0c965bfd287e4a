"""One contract suite over the three trackers: create, read back, closed, auth, rate limits."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from bot.config import IssueTracker as TrackerConfig
from bot.followups.github import FIND_PAGES
from bot.followups.ports import IssueState, IssueTracker, NewIssue, TrackerError, TrackerRateLimited
from bot.followups.trackers import build
from tests.fakes.github import FakeGitHub
from tests.fakes.webhook import Fault
from tests.followups.conftest import Tracker

ISSUE = NewIssue(
    title="[INC-7] Add a canary stage to gateway deploys",
    body="Follow-up from incident INC-7: Checkout is down\n\nAdd a canary stage to gateway deploys\n\nOwner: U0BOB",
)


class Waits:
    def __init__(self) -> None:
        self.seconds: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.seconds.append(seconds)


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def client(tracker: Tracker, http: httpx.AsyncClient, waits: Waits) -> IssueTracker:
    return build(TrackerConfig.model_validate(tracker.config), http=http, sleep=waits)


async def test_creates_an_issue_and_sees_it_closed(tracker: Tracker, http: httpx.AsyncClient) -> None:
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    assert made.url.startswith("http") and made.name
    assert tracker.keys() == [made.key]
    assert await issues.state(key=made.key) == IssueState.OPEN
    tracker.fake.close(made.key)
    assert await issues.state(key=made.key) == IssueState.CLOSED
    stored = next(iter(tracker.fake.issues.values()))
    title = stored.get("title") or stored["fields"]["summary"]
    assert title == ISSUE.title


async def test_the_vendor_auth_is_sent_and_a_wrong_token_is_a_clear_error(
    tracker: Tracker, http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(tracker.config["token_env"], "not-the-token")
    issues = client(tracker, http, Waits())
    with pytest.raises(TrackerError, match="refused"):
        await issues.create(ISSUE)
    assert tracker.fake.issues == {}
    header = tracker.fake.requests[-1].headers["Authorization"]
    expected_scheme = {"github": "Bearer ", "jira": "Basic ", "linear": "not-the-token"}[tracker.kind]
    assert header.startswith(expected_scheme)


async def test_a_rate_limit_is_waited_out_then_the_issue_is_created(tracker: Tracker, http: httpx.AsyncClient) -> None:
    waits = Waits()
    tracker.fake.rate_limit_next(3)
    made = await client(tracker, http, waits).create(ISSUE)
    assert len(tracker.fake.issues) == 1 and made.key
    [waited] = waits.seconds
    assert 1.0 <= waited <= 3.5  # what the vendor asked for (reset times are rounded to the second)
    assert len(tracker.fake.requests) == 2


@pytest.mark.parametrize("kind", ["primary", "429"])
async def test_github_primary_limit_and_429_are_waited_out(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """GitHub's other two ways of saying "slow down": remaining 0 with a reset time, and 429."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub() as fake:
        config = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
        waits = Waits()
        fake.rate_limit_next(3, kind=kind)
        made = await build(TrackerConfig.model_validate(config), http=http, sleep=waits).create(ISSUE)
        assert made.name == "#1" and len(fake.requests) == 2 and fake.violations == []
        [waited] = waits.seconds
        assert 1.0 <= waited <= 3.5


async def test_a_plain_github_403_is_a_permission_error_not_a_wait(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub() as fake:
        fake.inject(Fault(403, {}, {"message": "Resource not accessible by integration"}))
        config = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
        waits = Waits()
        with pytest.raises(TrackerError, match="refused the token"):
            await build(TrackerConfig.model_validate(config), http=http, sleep=waits).create(ISSUE)
        assert waits.seconds == [] and len(fake.requests) == 1


async def test_a_rate_limit_longer_than_we_wait_is_reported_not_slept(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    waits = Waits()
    tracker.fake.rate_limit_next(600)
    with pytest.raises(TrackerRateLimited) as caught:
        await client(tracker, http, waits).create(ISSUE)
    assert caught.value.retry_after > 500 and waits.seconds == []
    assert "try again" in str(caught.value) and tracker.fake.issues == {}


async def test_reading_back_respects_rate_limits_too(tracker: Tracker, http: httpx.AsyncClient) -> None:
    waits = Waits()
    issues = client(tracker, http, waits)
    made = await issues.create(ISSUE)
    tracker.fake.close(made.key)
    tracker.fake.rate_limit_next(2)
    assert await issues.state(key=made.key) == IssueState.CLOSED
    assert len(waits.seconds) == 1


async def test_a_reopened_issue_reads_open_again(tracker: Tracker, http: httpx.AsyncClient) -> None:
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    tracker.fake.close(made.key)
    assert await issues.state(key=made.key) == IssueState.CLOSED
    tracker.fake.reopen(made.key)
    assert await issues.state(key=made.key) == IssueState.OPEN


async def test_a_deleted_issue_reads_gone_not_as_a_failure(tracker: Tracker, http: httpx.AsyncClient) -> None:
    """GitHub 410 Gone, Jira 404 (the project still reads): an answer. Linear's delete puts the issue in
    its trash, where it can still be restored: trashed, not yet gone."""
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    tracker.fake.delete(made.key)
    deleted = IssueState.TRASHED if tracker.kind == "linear" else IssueState.GONE
    assert await issues.state(key=made.key) == deleted


@pytest.mark.parametrize("tracker", ["linear"], indirect=True)
async def test_a_linear_issue_restored_from_the_trash_reads_as_before(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    tracker.fake.close(made.key)
    tracker.fake.delete(made.key)
    assert await issues.state(key=made.key) == IssueState.TRASHED
    tracker.fake.restore(made.key)
    assert await issues.state(key=made.key) == IssueState.CLOSED


@pytest.mark.parametrize("tracker", ["linear"], indirect=True)
async def test_a_linear_key_that_lost_the_team_is_an_error_not_every_issue_gone(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    """Linear answers "Entity not found: Issue" for a purged issue and for any issue of a team the key can
    no longer read: only the team's own read tells them apart."""
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    tracker.fake.lose_access()
    with pytest.raises(TrackerError, match="could not read team team-eng"):
        await issues.state(key=made.key)
    other = build(TrackerConfig.model_validate({**tracker.config, "team_id": "team-other"}), http=http, sleep=Waits())
    tracker.fake.readable = True
    tracker.fake.delete(made.key, purge=True)
    with pytest.raises(TrackerError, match="could not read team team-other"):
        await other.state(key=made.key)
    assert await issues.state(key=made.key) == IssueState.GONE


@pytest.mark.parametrize("tracker", ["github"], indirect=True)
async def test_a_github_issue_out_of_reach_reads_gone(tracker: Tracker, http: httpx.AsyncClient) -> None:
    """404 for an issue deleted from, or transferred to, a repository the token cannot read, while the
    configured repository still reads."""
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    tracker.fake.delete(made.key, readable=False)
    assert await issues.state(key=made.key) == IssueState.GONE


@pytest.mark.parametrize("tracker", ["linear"], indirect=True)
async def test_a_purged_linear_issue_reads_gone(tracker: Tracker, http: httpx.AsyncClient) -> None:
    """Once the trash is emptied Linear answers "Entity not found: Issue"."""
    issues = client(tracker, http, Waits())
    made = await issues.create(ISSUE)
    tracker.fake.delete(made.key, purge=True)
    assert await issues.state(key=made.key) == IssueState.GONE


@pytest.mark.parametrize("tracker", ["github", "jira"], indirect=True)
async def test_an_unreadable_repository_or_project_is_an_error_not_every_issue_gone(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    """A 404 for the issue and for its repository/project too (the token lost access, bot.yml names
    another): the tracker's problem, told and asked again, not a reason to drop every link."""
    made = await client(tracker, http, Waits()).create(ISSUE)
    tracker.fake.delete(made.key)
    where, elsewhere = ("repo", "acme/other") if tracker.kind == "github" else ("project", "OTHER")
    other = build(TrackerConfig.model_validate({**tracker.config, where: elsewhere}), http=http, sleep=Waits())
    with pytest.raises(TrackerError, match="could not read"):
        await other.state(key=made.key)


CREATE_MARK = {"github": "title", "jira": "summary", "linear": "issueCreate"}  # in a create's body only


def creates(tracker: Tracker) -> list[Any]:
    mark = CREATE_MARK[tracker.kind].encode()
    return [r for r in tracker.fake.requests if r.method == "POST" and mark in r.body]


TOKENED = NewIssue(title=ISSUE.title, body=ISSUE.body, token="3b9f6c1e-6d1a-4c2b-9a57-0f1e2d3c4b5a")


async def test_a_create_whose_answer_was_lost_is_found_not_made_twice(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    waits = Waits()
    issues = client(tracker, http, waits)
    tracker.fake.lose_answer_next()  # the tracker makes the issue; the bot gets a 502
    made = await issues.create(TOKENED)
    assert len(tracker.fake.issues) == 1, "a retried create would have made a second issue"
    assert tracker.keys() == [made.key] and made.url.startswith("http") and made.name
    assert len(creates(tracker)) == 1  # the look-up came first and found it: no second create
    assert len(tracker.fake.requests) == 2
    assert len(waits.seconds) == 1


@pytest.mark.parametrize("tracker", ["jira"], indirect=True)  # GitHub's and Linear's look-ups use no index
async def test_a_lost_jira_create_is_looked_for_once_its_search_index_caught_up(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    """Jira's JQL index is near-real-time: a look-up 2 s after a lost create missed it, and made it again."""
    fake = tracker.fake
    fake.search_lag = 5.0  # the issue shows in JQL 5 s after its create

    async def waits(seconds: float) -> None:
        fake.elapse(seconds)

    fake.lose_answer_next()  # Jira makes the issue; the bot gets a 502
    made = await build(TrackerConfig.model_validate(tracker.config), http=http, sleep=waits).create(TOKENED)
    assert len(fake.issues) == 1, "the look-up ran before Jira's index showed the issue: it was made twice"
    assert len(creates(tracker)) == 1 and tracker.keys() == [made.key]
    assert fake.elapsed >= 10.0


async def test_find_reads_the_token_back_the_vendors_way(tracker: Tracker, http: httpx.AsyncClient) -> None:
    issues = client(tracker, http, Waits())
    assert await issues.find(token=TOKENED.token) is None
    await issues.create(ISSUE)  # another follow-up's issue, without the token
    made = await issues.create(TOKENED)
    found = await issues.find(token=TOKENED.token)
    assert found == made
    assert await issues.find(token="00000000-0000-4000-8000-000000000000") is None
    stored = str(tracker.fake.issues[int(made.key) if tracker.kind == "github" else made.key])
    marker = {"github": "<!-- incident-bot follow-up", "jira": "Incident bot reference", "linear": TOKENED.token}
    assert marker[tracker.kind] in stored


async def test_a_create_that_keeps_failing_is_reported_not_repeated_blindly(
    tracker: Tracker, http: httpx.AsyncClient
) -> None:
    waits = Waits()
    for _ in range(4):
        tracker.fake.inject(Fault(503, {}, {"message": "unavailable"}, body_contains=CREATE_MARK[tracker.kind]))
    with pytest.raises(TrackerError, match="did not say whether"):
        await client(tracker, http, waits).create(TOKENED)
    assert len(creates(tracker)) == 4 and tracker.fake.issues == {}
    # Each create after the first followed a look-up (GitHub's: the issues with the bot's labels, then all).
    look_up = 2 if tracker.kind == "github" else 1
    assert len(tracker.fake.requests) == 4 + 3 * look_up


async def test_a_github_secondary_limit_without_headers_is_a_wait_not_a_permission_error(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub: a secondary limit is 403 (or 429) with a message saying so; without retry-after or
    x-ratelimit-remaining: 0, wait at least a minute (longer than the bot waits in-line: try later)."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub() as fake:
        message = "You have exceeded a secondary rate limit. Please wait a few minutes before you try again."
        fake.inject(Fault(403, {}, {"message": message, "documentation_url": "https://docs.github.com/rest"}))
        config = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
        waits = Waits()
        with pytest.raises(TrackerRateLimited) as caught:
            await build(TrackerConfig.model_validate(config), http=http, sleep=waits).create(ISSUE)
        assert caught.value.retry_after >= 60 and "refused the token" not in str(caught.value)
        assert waits.seconds == [] and len(fake.requests) == 1 and fake.issues == {}


async def test_a_renamed_github_repository_still_takes_issues_and_answers_look_ups(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub redirects requests for a renamed repository (301 for GET, 307 for POST): bot.yml still
    naming the old repository must not stop follow-ups from being filed, found or seen closed."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub() as fake:
        config = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
        issues = build(TrackerConfig.model_validate(config), http=http, sleep=Waits())
        earlier = await issues.create(ISSUE)
        fake.rename("acme/platform")
        made = await issues.create(TOKENED)
        assert made.name == "#2" and len(fake.issues) == 2 and fake.violations == []
        assert await issues.find(token=TOKENED.token) == made
        fake.close(earlier.key)
        assert await issues.state(key=earlier.key) == IssueState.CLOSED


async def test_a_lost_github_create_is_found_when_github_dropped_the_labels(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """GitHub silently drops the labels of an issue created by a token without push access (and a person
    may take them off): the look-up after a lost answer must not need them, or it creates a second issue."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub(push_access=False) as fake:
        config = {
            "kind": "github",
            "repo": "acme/api",
            "token_env": "TEST_GITHUB_TOKEN",
            "api_url": fake.url,
            "labels": ["incident-followup"],
        }
        issues = build(TrackerConfig.model_validate(config), http=http, sleep=Waits())
        fake.lose_answer_next()  # GitHub makes the issue (without its labels); the bot gets a 502
        made = await issues.create(TOKENED)
        assert len(fake.issues) == 1, "the look-up missed the issue and a second one was created"
        assert fake.issues[int(made.key)]["labels"] == []
        assert await issues.find(token=TOKENED.token) == made


async def test_a_lost_github_create_past_the_newest_issues_is_found_by_search(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A retry long after a lost answer (a crash, GitHub down for a while) in a busy repository: the issue is
    older than the newest pages listed, and without GitHub's search a second issue would be filed. Its labels
    do not single it out: GitHub dropped them (a token without push access)."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub(push_access=False) as fake:
        config = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
        issues = build(TrackerConfig.model_validate(config), http=http, sleep=Waits())
        made = await issues.create(TOKENED)
        fake.file_many(FIND_PAGES * 100)  # people file issues meanwhile
        assert await issues.find(token=TOKENED.token) == made
        assert await issues.find(token="00000000-0000-4000-8000-000000000000") is None
        assert fake.violations == []


async def test_a_github_look_up_in_a_small_repository_does_not_ask_the_search_api(
    http: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The list read to its end already answers: the search API (30 requests a minute, and lagging behind a
    just-created issue) is not asked."""
    monkeypatch.setenv("TEST_GITHUB_TOKEN", "ghp_test")
    async with FakeGitHub() as fake:
        config = {"kind": "github", "repo": "acme/api", "token_env": "TEST_GITHUB_TOKEN", "api_url": fake.url}
        issues = build(TrackerConfig.model_validate(config), http=http, sleep=Waits())
        fake.file_many(150)
        assert await issues.find(token=TOKENED.token) is None
        assert not [r for r in fake.requests if "/search/" in r.path]
