"""GitHub Issues (the vendors' contracts, and how a lost create is found, are in trackers.py's docstring)."""

from __future__ import annotations

import time
import uuid
from typing import Any, Literal

import httpx

from bot.followups import advice
from bot.followups.http import HttpTracker, seconds
from bot.followups.ports import Issue, IssueState, NewIssue


class GitHubIssues(HttpTracker):
    kind = "github"
    label = "GitHub"

    def __init__(self, *, token: str, repo: str, labels: list[str], api_url: str | None = None, **kw: Any) -> None:
        super().__init__(**kw)
        self.repo = repo
        self.labels = labels
        self.base = (api_url or "https://api.github.com").rstrip("/")
        self.headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/vnd.github+json",
            "X-GitHub-Api-Version": "2022-11-28",
            "User-Agent": "incident-bot",
        }

    async def send(self, method: str, url: str, *, unsafe: bool = False, **kwargs: Any) -> httpx.Response:
        # GitHub redirects a renamed repository (301 for GET, 307 for POST, which httpx repeats with its
        # body) and a transferred issue (301): followed on the same host, so the token goes along.
        return await super().send(method, url, unsafe=unsafe, follow_redirects=True, **kwargs)

    def throttled(self, response: httpx.Response) -> float | None:
        if response.status_code not in (403, 429):
            return None
        retry_after = seconds(response.headers.get("retry-after"))
        if retry_after is not None:
            return retry_after
        if response.headers.get("x-ratelimit-remaining") == "0":
            reset = seconds(response.headers.get("x-ratelimit-reset"))
            return max(1.0, reset - time.time()) if reset is not None else 60.0
        if response.status_code == 429 or _says_rate_limit(response):  # GitHub: then wait at least a minute
            return 60.0
        return None  # a plain 403 is a permission problem

    def advice(self, response: httpx.Response) -> str:
        return advice.github(response, repo=self.repo, token_env=self.token_env)

    async def create_once(self, issue: NewIssue) -> Issue:
        body = issue.body + (f"\n\n{github_marker(issue.token)}" if issue.token else "")
        payload = {"title": issue.title[:256], "body": body, "labels": self.labels}
        response = await self.send(
            "POST", f"{self.base}/repos/{self.repo}/issues", unsafe=True, json=payload, headers=self.headers
        )
        if response.status_code != 201:
            raise self.refused(response, f"create an issue in {self.repo}")
        return _github_issue(response.json())

    async def find(self, *, token: str) -> Issue | None:
        """The newest issues, read for the marker: a lost answer is minutes old at most. Those with our labels
        first (more of the past per page), then all: GitHub silently drops labels set by a token without push
        access, and people take them off."""
        marker = github_marker(token)
        if self.labels:
            found = await self._newest_with(marker, labels=",".join(self.labels))
            if found:
                return found
        found = await self._newest_with(marker, labels=None)
        if found is None:  # the list reached past the newest FIND_PAGES pages: older issues are indexed
            return await self._searched(token, marker)
        return found or None

    async def _newest_with(self, marker: str, *, labels: str | None) -> Issue | Literal[False] | None:
        """The issue among the newest FIND_PAGES pages; False: not there, and the list ended before those
        pages did; None: not among them, and there are older issues."""
        params: dict[str, Any] = {"state": "all", "sort": "created", "direction": "desc", "per_page": 100}
        if labels:
            params["labels"] = labels
        for page in range(1, FIND_PAGES + 1):
            response = await self.send(
                "GET", f"{self.base}/repos/{self.repo}/issues", params={**params, "page": page}, headers=self.headers
            )
            if response.status_code != 200:
                raise self.refused(response, f"list the issues of {self.repo}")
            issues = response.json()
            for found in issues:
                if "pull_request" not in found and marker in (found.get("body") or ""):
                    return _github_issue(found)
            if len(issues) < params["per_page"]:
                return False
        return None

    async def _searched(self, token: str, marker: str) -> Issue | None:
        """The issue by its token through the search API (its own, lower rate limit, waited out as any)."""
        query = f'repo:{self.repo} is:issue in:body "{uuid.UUID(token).hex}"'
        response = await self.send("GET", f"{self.base}/search/issues", params={"q": query}, headers=self.headers)
        if response.status_code != 200:
            raise self.refused(response, f"search the issues of {self.repo}")
        for found in response.json().get("items") or []:
            if "pull_request" not in found and marker in (found.get("body") or ""):
                return _github_issue(found)
        return None

    async def state(self, *, key: str) -> IssueState:
        """410: deleted. 404: deleted or transferred where the token cannot read, or the repository
        itself unreadable (a token or config problem, not the issue's): told apart by reading the repository."""
        response = await self.send("GET", f"{self.base}/repos/{self.repo}/issues/{key}", headers=self.headers)
        if response.status_code == 410:
            return IssueState.GONE
        if response.status_code == 404:
            repository = await self.send("GET", f"{self.base}/repos/{self.repo}", headers=self.headers)
            if repository.status_code == 200:
                return IssueState.GONE
            raise self.refused(repository, f"read the repository {self.repo} (issue #{key} answered 404)")
        if response.status_code != 200:
            raise self.refused(response, f"read issue #{key}")
        return IssueState.CLOSED if response.json().get("state") == "closed" else IssueState.OPEN


def _says_rate_limit(response: httpx.Response) -> bool:
    """A 403 whose message says a (secondary) rate limit was exceeded, which may come without headers."""
    try:
        message = response.json().get("message")
    except (ValueError, AttributeError):
        return False
    return isinstance(message, str) and "rate limit" in message.lower()


FIND_PAGES = 3  # GitHub: the newest 300 issues are searched for a lost create's marker


def github_marker(token: str) -> str:
    return f"<!-- incident-bot follow-up {uuid.UUID(token).hex} -->"


def _github_issue(body: dict[str, Any]) -> Issue:
    return Issue(key=str(body["number"]), url=str(body["html_url"]), name=f"#{body['number']}")
