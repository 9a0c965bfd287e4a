"""GitHub Issues (github.py), Jira Cloud and Linear over the shared httpx client, each respecting its rate limits.

The vendors' contracts (specs/README.md, "Issue trackers"):
- GitHub: `Authorization: Bearer`, `Accept: application/vnd.github+json`, `X-GitHub-Api-Version`; when
  throttled 403 or 429 with `retry-after`, or `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch s),
  or only a message saying a secondary rate limit was exceeded (then at least a minute).
- Jira Cloud: basic auth (email:API token), descriptions in Atlassian Document Format; 429 `Retry-After`,
  and 503 `Retry-After` when a resource limit is reached (waited out the same way).
- Linear: GraphQL with `Authorization: <api key>`; throttling is an error with `extensions.code`
  `RATELIMITED` (and `X-RateLimit-Requests-Reset`, epoch ms).
A wait the tracker asks for is honoured up to `max_wait`; longer, and the click is told to try later.

Creating is not retried blindly: a create whose outcome is unknown (no answer, 5xx) is followed by a
look-up of the issue by the token it was sent with before another create (`find`), and so is a
retry after a crash (the flow stores the token first):
- GitHub has no idempotency key: the token is an HTML comment at the end of the body (invisible on
  the page), found by listing the repository's newest issues and reading bodies (those with the bot's
  labels first, then all: GitHub silently drops labels set by a token without push access).
  The list is read first, as the search API's index lags behind a just-created issue; an issue past the
  newest FIND_PAGES pages (a retry long after, in a busy repository) is old enough to be indexed, so then the
  search API is asked for the token (`repo:… is:issue in:body "<token>"`).
- Jira: the token is the description's last line, found with JQL (`description ~ "token"`) on
  `/rest/api/3/search/jql`. Jira's search index is near-real-time, so the bot looks only 10 s after a
  lost answer (`JiraIssues.look_after`); an index further behind than that may still miss it.
- Linear: the token is the issue's own id (`IssueCreateInput.id` takes a client UUID), found with
  `issues(filter: {id: {eq}}, includeArchived: true)`; a second create with the same id is refused by Linear
  anyway. An issue under that id in the trash was deleted by a person: not found, and created under a new id.

An issue that went (`IssueState.GONE`), as each vendor says it:
- GitHub: 410 Gone (deleted); 404 (deleted or transferred where the token cannot read) once the repository
  itself still reads, else it is the token's or the config's problem. A transfer the token can follow
  answers 301 to the issue's new address and is read there.
- Jira: 404 ("does not exist or you do not have permission") once the project still reads; an issue moved
  to another project answers under its old key with its new one, so it is not gone.
- Linear: deleting puts the issue in the trash (`trashed: true`, and `archivedAt` set) for 30 days, where it
  can be restored (`trashed` null/false again): that is `IssueState.TRASHED`, which keeps the link for a
  grace (service.TRASH_GRACE). `archivedAt` alone is not a delete (closed issues are archived
  automatically and still read with their state). Once purged, or moved to a team the key cannot read,
  reading it is the error "Entity not found: Issue"; gone once the configured team still reads, as for
  GitHub and Jira. Linear's API gives the same error when the key itself lost access to the team (its
  message does not tell the two apart), so without the team read every link would be dropped.
"""

from __future__ import annotations

import asyncio
import base64
import os
import time
import uuid
from typing import Any

import httpx

from bot.config import IssueTracker as TrackerConfig
from bot.followups import advice
from bot.followups.github import GitHubIssues
from bot.followups.http import HttpTracker, Sleep, seconds
from bot.followups.ports import Issue, IssueState, IssueTracker, NewIssue, TrackerError


def adf(text: str) -> dict[str, Any]:
    """Plain text as an Atlassian Document Format document: one paragraph per line."""
    content = [
        {"type": "paragraph", "content": [{"type": "text", "text": line}]} if line else {"type": "paragraph"}
        for line in text.splitlines()
    ]
    return {"type": "doc", "version": 1, "content": content or [{"type": "paragraph"}]}


class JiraIssues(HttpTracker):
    kind = "jira"
    label = "Jira"
    # A lost create is found by JQL, whose index is near-real-time ("within seconds", not at once): looked for
    # after 10 s, not the 2 s the first retry waits elsewhere, or an issue made a moment ago is made again.
    look_after = 10.0

    def __init__(
        self, *, email: str, token: str, project: str, issue_type: str, api_url: str, email_env: str = "", **kw: Any
    ) -> None:
        super().__init__(**kw)
        self.email_env = email_env or "named by issue_tracker.email_env"
        self.project = project
        self.issue_type = issue_type
        self.base = api_url.rstrip("/")
        basic = base64.b64encode(f"{email}:{token}".encode()).decode()
        self.headers = {"Authorization": f"Basic {basic}", "Accept": "application/json"}

    async def create_once(self, issue: NewIssue) -> Issue:
        body = issue.body + (f"\nIncident bot reference: {uuid.UUID(issue.token).hex}" if issue.token else "")
        fields = {
            "project": {"key": self.project},
            "summary": " ".join(issue.title.split())[:255],
            "issuetype": {"name": self.issue_type},
            "description": adf(body),
        }
        response = await self.send(
            "POST", f"{self.base}/rest/api/3/issue", unsafe=True, json={"fields": fields}, headers=self.headers
        )
        if response.status_code != 201:
            raise self.refused(response, f"create an issue in project {self.project}")
        return self._issue(str(response.json()["key"]))

    def busy(self, response: httpx.Response) -> float | None:
        """Atlassian: a 503 may come with Retry-After when a resource limit is reached; not a rate limit,
        but to be handled as one."""
        if response.status_code == 503:
            return seconds(response.headers.get("retry-after"))
        return None

    def advice(self, response: httpx.Response) -> str:
        return advice.jira(
            response,
            project=self.project,
            issue_type=self.issue_type,
            api_url=self.base,
            email_env=self.email_env,
            token_env=self.token_env,
        )

    def _issue(self, key: str) -> Issue:
        return Issue(key=key, url=f"{self.base}/browse/{key}", name=key)

    async def find(self, *, token: str) -> Issue | None:
        jql = f'project = "{self.project}" AND description ~ "{uuid.UUID(token).hex}"'
        response = await self.send(
            "GET",
            f"{self.base}/rest/api/3/search/jql",
            params={"jql": jql, "fields": "summary", "maxResults": 5},
            headers=self.headers,
        )
        if response.status_code != 200:
            raise self.refused(response, f"search project {self.project}")
        issues = response.json().get("issues") or []
        return self._issue(str(issues[0]["key"])) if issues else None

    async def state(self, *, key: str) -> IssueState:
        """404 is "does not exist or you do not have permission": gone when the project still reads (an
        issue moved to another project answers under its new key, so a 404 is not a move)."""
        response = await self.send(
            "GET", f"{self.base}/rest/api/3/issue/{key}", params={"fields": "status,resolution"}, headers=self.headers
        )
        if response.status_code == 404:
            project = await self.send("GET", f"{self.base}/rest/api/3/project/{self.project}", headers=self.headers)
            if project.status_code == 200:
                return IssueState.GONE
            raise self.refused(project, f"read project {self.project} ({key} answered 404)")
        if response.status_code != 200:
            raise self.refused(response, f"read {key}")
        status = (response.json().get("fields") or {}).get("status") or {}
        done = (status.get("statusCategory") or {}).get("key") == "done"
        return IssueState.CLOSED if done else IssueState.OPEN


CREATE = """mutation IssueCreate($input: IssueCreateInput!) {
  issueCreate(input: $input) { success issue { id identifier url } }
}"""
STATE = """query IssueState($id: String!) { issue(id: $id) { id trashed state { type } } }"""
NOT_FOUND = "Entity not found: Issue"  # no issue by that id that the key can read (purged, or out of reach)
EXISTS = "Entity already exists: Issue"  # a create whose id (the token) an earlier create used
TEAM = """query TeamReadable($id: String!) { team(id: $id) { id } }"""
FIND = """query IssueById($id: ID!) {
  issues(filter: { id: { eq: $id } }, first: 1, includeArchived: true) { nodes { id identifier url trashed } }
}"""


class LinearIssues(HttpTracker):
    kind = "linear"
    label = "Linear"

    def __init__(self, *, token: str, team_id: str, api_url: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.team_id = team_id
        self.url = api_url or "https://api.linear.app/graphql"
        self.headers = {"Authorization": token, "Content-Type": "application/json"}

    def throttled(self, response: httpx.Response) -> float | None:
        try:
            errors = response.json().get("errors") or []
        except ValueError:
            errors = []
        if not any((e.get("extensions") or {}).get("code") == "RATELIMITED" for e in errors if isinstance(e, dict)):
            return super().throttled(response)
        reset = seconds(response.headers.get("x-ratelimit-requests-reset"))
        return max(1.0, reset / 1000.0 - time.time()) if reset is not None else 60.0

    async def _graphql(
        self, query: str, variables: dict[str, Any], what: str, *, unsafe: bool = False
    ) -> dict[str, Any]:
        response = await self.send(
            "POST", self.url, unsafe=unsafe, json={"query": query, "variables": variables}, headers=self.headers
        )
        body = response.json() if response.headers.get("content-type", "").startswith("application/json") else {}
        if response.status_code != 200 or body.get("errors"):
            message = "; ".join(str(e.get("message")) for e in body.get("errors") or [] if isinstance(e, dict))
            if message.startswith(NOT_FOUND):
                raise _NotFound(message)
            if message.startswith(EXISTS):
                raise _Exists(message)
            told = advice.linear(message, team_id=self.team_id, token_env=self.token_env)
            if not told and response.status_code in (401, 403):
                told = advice.linear("authentication", team_id=self.team_id, token_env=self.token_env)
            raise TrackerError(f"Linear could not {what}: {told or message or f'HTTP {response.status_code}'}")
        return dict(body.get("data") or {})

    async def create_once(self, issue: NewIssue) -> Issue:
        fields = {"teamId": self.team_id, "title": issue.title[:255], "description": issue.body}
        if issue.token:
            fields["id"] = issue.token  # Linear takes the client's UUID: the same create twice is refused
        try:
            data = await self._graphql(CREATE, {"input": fields}, "create an issue", unsafe=True)
        except _Exists:  # made under this id already (a create that outlived its claim, raced by another)
            made = await self.find(token=issue.token) if issue.token else None
            if made is not None:
                return made
            # The id's issue is in the trash (or purged): a person deleted it, so it is not the follow-up's
            # any more, and every create under that id would be refused. A new id makes the new issue.
            fields["id"] = str(uuid.uuid4())
            data = await self._graphql(CREATE, {"input": fields}, "create an issue", unsafe=True)
        created = data.get("issueCreate") or {}
        found = created.get("issue") or {}
        if not created.get("success") or not found.get("id"):
            raise TrackerError("Linear did not create the issue (success: false)")
        return _linear_issue(found)

    async def find(self, *, token: str) -> Issue | None:
        """Archived or not (Linear's list leaves archived issues out by default); one in the trash is not
        found: a person deleted it."""
        data = await self._graphql(FIND, {"id": token}, "look the issue up")
        nodes = [n for n in (data.get("issues") or {}).get("nodes") or [] if not n.get("trashed")]
        return _linear_issue(nodes[0]) if nodes else None

    async def state(self, *, key: str) -> IssueState:
        """Deleting puts an issue in the trash (`trashed`: restorable), purged later ("Entity not found"):
        gone only when the team still reads, as "Entity not found" is also the answer of a key that lost
        access to the team (a TrackerError then, asked again next time)."""
        try:
            data = await self._graphql(STATE, {"id": key}, f"read issue {key}")
        except _NotFound:
            what = f"read team {self.team_id} (issue {key} was not found)"
            if not (await self._graphql(TEAM, {"id": self.team_id}, what)).get("team"):
                raise TrackerError(f"Linear could not {what}") from None
            return IssueState.GONE
        issue = data.get("issue") or {}
        if issue.get("trashed"):
            return IssueState.TRASHED
        done = (issue.get("state") or {}).get("type") in ("completed", "canceled")
        return IssueState.CLOSED if done else IssueState.OPEN


class _NotFound(TrackerError):
    """Linear has no issue by that id."""


class _Exists(TrackerError):
    """Linear has an issue by the id a create sent."""


def _linear_issue(found: dict[str, Any]) -> Issue:
    return Issue(key=str(found["id"]), url=str(found["url"]), name=str(found.get("identifier") or found["id"]))


def _env(name: str | None, what: str) -> str:
    value = os.environ.get(name or "", "").strip()
    if not value:
        raise TrackerError(f"issue_tracker: environment variable {name} ({what}) is not set")
    return value


def build(config: TrackerConfig, *, http: httpx.AsyncClient, sleep: Sleep = asyncio.sleep) -> IssueTracker:
    """The tracker bot.yml asks for; a TrackerError when its secrets are missing from the environment."""
    token = _env(config.token_env, "the tracker's token")
    named = {"token_env": config.token_env or ""}
    if config.kind == "github":
        assert config.repo is not None
        return GitHubIssues(
            token=token, repo=config.repo, labels=config.labels, api_url=config.api_url, http=http, sleep=sleep, **named
        )
    if config.kind == "jira":
        assert config.project is not None and config.api_url is not None
        return JiraIssues(
            email=_env(config.email_env, "the Jira account's email"),
            token=token,
            project=config.project,
            issue_type=config.issue_type,
            api_url=config.api_url,
            email_env=config.email_env or "",
            http=http,
            sleep=sleep,
            **named,
        )
    assert config.team_id is not None
    return LinearIssues(token=token, team_id=config.team_id, api_url=config.api_url, http=http, sleep=sleep, **named)
