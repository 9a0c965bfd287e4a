"""A local GitHub REST API for issues, held to GitHub's contract (specs/README.md, "Issue trackers").

`POST /repos/{owner}/{repo}/issues`, `GET /repos/{owner}/{repo}/issues/{number}`, and the list
`GET /repos/{owner}/{repo}/issues` (`state` open|closed|all, default open; `labels` comma-separated,
all required; `sort` created|updated|comments; `direction` asc|desc; `per_page` at most 100; `page`),
which, as GitHub's does, includes pull requests and answers at most `per_page` issues a page; a transferred
issue's old number answers 301 to `GET /repositories/{id}/issues/{number}`, or 404 when it went to a
repository the token cannot read; a deleted issue answers 410 Gone; one the token may not read (`forbid`)
answers 403. `GET /repos/{owner}/{repo}` reads the repository itself. `GET /search/issues?q=` takes
`repo:owner/name`, `is:issue` and `in:body` qualifiers and one quoted phrase (matched in the body), and answers
`{total_count, incomplete_results, items}`; an issue made less than `index_lag` creates ago is not indexed yet,
as GitHub's search lags behind a just-created issue. Every call needs
`Authorization: Bearer <token>` (401 "Bad credentials"), `Accept: application/vnd.github+json`,
`X-GitHub-Api-Version: 2022-11-28` and a `User-Agent` (GitHub refuses requests without one). Rate
limits answer as GitHub does: a secondary limit is 403 with `retry-after`; the primary limit is
403 with `x-ratelimit-remaining: 0` and `x-ratelimit-reset` (epoch seconds); 429 is possible too.
"""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from tests.fakes.webhook import FakeServer, Fault


class FakeGitHub(FakeServer):
    def __init__(self, *, token: str = "ghp_test", repo: str = "acme/api", push_access: bool = True) -> None:
        super().__init__()
        self.token = token
        self.repo = repo
        # GitHub: "Only users with push access can set labels for new issues. Labels are silently dropped otherwise."
        self.push_access = push_access
        self.issues: dict[int, dict[str, Any]] = {}
        self.app.router.add_post("/repos/{owner}/{repo}/issues", self._create)
        self.app.router.add_get("/repos/{owner}/{repo}/issues/{number}", self._get)
        self.app.router.add_get("/repos/{owner}/{repo}/issues", self._list)
        self.app.router.add_get("/repos/{owner}/{repo}", self._repo)
        self.app.router.add_get("/repositories/{repo_id}/issues/{number}", self._moved_here)
        self.app.router.add_get("/search/issues", self._search)
        self.index_lag = 0  # the newest this many issues are not in the search index yet
        self.renamed_from: set[str] = set()
        self.moved: dict[int, dict[str, Any]] = {}  # transferred away: the old number answers 301
        self.made = 0
        self.deleted: set[int] = set()  # answers 410 Gone
        self.out_of_reach: set[int] = set()  # deleted or transferred where the token cannot read: 404
        self.forbidden: set[int] = set()  # reads answer 403: the token may not read them (the repository reads)

    REPO_ID = 424242  # the repository issues are transferred to

    # --- control surface --------------------------------------------------------------------------

    def close(self, key: str) -> None:
        self.issues[int(key)]["state"] = "closed"

    def reopen(self, key: str) -> None:
        self.issues[int(key)]["state"] = "open"

    def delete(self, key: str, *, readable: bool = True) -> None:
        """Deleted (410 Gone); `readable=False`: deleted from, or transferred to, a repository the
        token cannot read, which GitHub answers with 404."""
        self.issues.pop(int(key))
        (self.deleted if readable else self.out_of_reach).add(int(key))

    def forbid(self, key: str) -> None:
        """Reads of the issue answer 403, as GitHub does for a token not allowed to read it."""
        self.forbidden.add(int(key))

    def rename(self, new: str) -> None:
        """The repository gets a new name; GitHub redirects requests made to the old one."""
        self.renamed_from.add(self.repo)
        self.repo = new
        for issue in self.issues.values():
            issue["html_url"] = f"https://github.com/{new}/issues/{issue['number']}"

    def transfer(self, key: str) -> dict[str, Any]:
        """Move the issue to another repository: GitHub answers its old address with 301 to the new one."""
        issue = self.issues.pop(int(key))
        number = 500 + int(key)
        issue = {**issue, "number": number, "html_url": f"https://github.com/acme/elsewhere/issues/{number}"}
        self.moved[int(key)] = issue
        return issue

    def file_many(self, count: int, *, body: str = "filed by people") -> None:
        """`count` more issues, as people and other tools file them (not through the API: fast)."""
        for _ in range(count):
            self.made += 1
            number = self.made
            self.issues[number] = {
                "id": 1000 + number,
                "number": number,
                "title": f"Issue {number}",
                "body": body,
                "labels": [],
                "state": "open",
                "html_url": f"https://github.com/{self.repo}/issues/{number}",
                "url": f"https://api.github.com/repos/{self.repo}/issues/{number}",
            }

    def rate_limit_next(self, seconds: int = 2, *, kind: str = "secondary") -> None:
        if kind == "secondary":
            headers = {"retry-after": str(seconds)}
        elif kind == "primary":
            headers = {
                "x-ratelimit-limit": "5000",
                "x-ratelimit-remaining": "0",
                "x-ratelimit-reset": str(int(time.time()) + seconds),
            }
        else:
            self.inject(Fault(429, {"retry-after": str(seconds)}, {"message": "Too Many Requests"}))
            return
        body = {"message": "You have exceeded a rate limit.", "documentation_url": "https://docs.github.com/rest"}
        self.inject(Fault(403, headers, body))

    # --- the API ----------------------------------------------------------------------------------

    def _check(self, request: web.Request) -> web.Response | None:
        if not request.headers.get("User-Agent"):
            return self.violation("no User-Agent", 403, {"message": "Request forbidden by administrative rules."})
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials", "status": "401"}, status=401)
        if "application/vnd.github+json" not in request.headers.get("Accept", ""):
            return self.violation("Accept is not application/vnd.github+json")
        if request.headers.get("X-GitHub-Api-Version") != "2022-11-28":
            return self.violation("X-GitHub-Api-Version missing or unsupported")
        named = f"{request.match_info['owner']}/{request.match_info['repo']}"
        if named in self.renamed_from:  # as GitHub does for a renamed repository: 301 for GET, 307 for the rest
            moved = str(request.url).replace(f"/repos/{named}/", f"/repos/{self.repo}/", 1)
            status = 301 if request.method == "GET" else 307
            body = {"message": "Moved Permanently", "url": moved, "documentation_url": "https://docs.github.com/rest"}
            return web.json_response(body, status=status, headers={"Location": moved})
        if named != self.repo:
            return web.json_response({"message": "Not Found", "status": "404"}, status=404)
        return None

    async def _create(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        body = await request.json()
        title = body.get("title")
        if not isinstance(title, str | int) or not str(title).strip():
            return self.violation("title is required", 422, {"message": "Validation Failed", "status": "422"})
        if "body" in body and not isinstance(body["body"], str | type(None)):
            return self.violation("body must be a string", 422)
        labels = body.get("labels", [])
        if not isinstance(labels, list) or not all(isinstance(x, str) for x in labels):
            return self.violation("labels must be a list of names", 422)
        self.made += 1  # numbers are never reused, as GitHub's are not (after a delete or transfer)
        number = self.made
        html_url = f"https://github.com/{self.repo}/issues/{number}"
        issue = {
            "id": 1000 + number,
            "number": number,
            "title": str(title),
            "body": body.get("body"),
            "labels": [{"name": name} for name in labels] if self.push_access else [],
            "state": "open",
            "html_url": html_url,
            "url": f"https://api.github.com/repos/{self.repo}/issues/{number}",
        }
        self.issues[number] = issue
        return web.json_response(issue, status=201)

    async def _get(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        number = int(request.match_info["number"])
        if number in self.forbidden:
            body = {"message": "Resource not accessible by personal access token", "status": "403"}
            return web.json_response(body, status=403)
        issue = self.issues.get(number)
        if issue is None and number in self.moved:
            moved = f"{self.url}/repositories/{self.REPO_ID}/issues/{self.moved[number]['number']}"
            body = {"message": "Moved Permanently", "url": moved, "documentation_url": "https://docs.github.com/rest"}
            return web.json_response(body, status=301, headers={"Location": moved})
        if issue is None and number in self.deleted:
            return web.json_response({"message": "This issue was deleted", "status": "410"}, status=410)
        if issue is None:
            return web.json_response({"message": "Not Found", "status": "404"}, status=404)
        return web.json_response(issue)

    async def _repo(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        return web.json_response({"id": 4242, "full_name": self.repo, "has_issues": True})

    async def _moved_here(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials", "status": "401"}, status=401)
        number = int(request.match_info["number"])
        found = [i for i in self.moved.values() if i["number"] == number]
        if int(request.match_info["repo_id"]) != self.REPO_ID or not found:
            return web.json_response({"message": "Not Found", "status": "404"}, status=404)
        return web.json_response(found[0])

    async def _list(self, request: web.Request) -> web.Response:
        refused = self._check(request)
        if refused is not None:
            return refused
        query = request.query
        state = query.get("state", "open")
        sort, direction = query.get("sort", "created"), query.get("direction", "desc")
        if state not in ("open", "closed", "all") or sort not in ("created", "updated", "comments"):
            return self.violation(f"bad state/sort: {state}/{sort}", 422, {"message": "Validation Failed"})
        if direction not in ("asc", "desc"):
            return self.violation(f"bad direction: {direction}", 422, {"message": "Validation Failed"})
        per_page, page = int(query.get("per_page", "30")), int(query.get("page", "1"))
        if not 1 <= per_page <= 100 or page < 1:
            return self.violation(f"per_page {per_page} / page {page}", 422, {"message": "Validation Failed"})
        wanted = {name for name in query.get("labels", "").split(",") if name}
        found = [
            issue
            for issue in sorted(self.issues.values(), key=lambda i: i["number"], reverse=direction == "desc")
            if (state == "all" or issue["state"] == state) and wanted <= {label["name"] for label in issue["labels"]}
        ]
        return web.json_response(found[(page - 1) * per_page : page * per_page])

    async def _search(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"message": "Bad credentials", "status": "401"}, status=401)
        q = request.query.get("q", "")
        phrase = q.split('"')[1] if q.count('"') == 2 else ""
        words = q.replace(f'"{phrase}"', " ").split()
        repos = [w.removeprefix("repo:") for w in words if w.startswith("repo:")]
        if not phrase or any(w not in ("is:issue", "in:body") and not w.startswith("repo:") for w in words):
            return self.violation(f"unexpected search {q!r}", 422, {"message": "Validation Failed"})
        indexed = self.made - self.index_lag
        found = [
            issue
            for issue in sorted(self.issues.values(), key=lambda i: i["number"], reverse=True)
            if issue["number"] <= indexed and repos in ([], [self.repo]) and phrase in (issue["body"] or "")
        ]
        return web.json_response({"total_count": len(found), "incomplete_results": False, "items": found[:30]})
