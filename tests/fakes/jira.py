"""A local Jira Cloud REST API v3 for issues (specs/README.md, "Issue trackers").

`POST /rest/api/3/issue` needs basic auth (email:API token), `fields.project.key`, a one-line
`summary` of at most 255 characters, `issuetype.name`, and a `description` in Atlassian Document
Format (v3 refuses a plain string). `GET /rest/api/3/issue/{key}?fields=status,resolution` answers
`fields.status.statusCategory.key` (`new`, `indeterminate`, `done`). Rate limits: 429 `Retry-After`.
`GET /rest/api/3/search/jql?jql=...&fields=...&maxResults=...` (the enhanced search; the old
`/rest/api/3/search` is gone) answers `{"issues": [{id, key, fields}], "isLast": true}`; of JQL it
understands `project = KEY` and `description ~ "term"` (a word of the description's text) joined
by AND, and refuses anything else as Jira refuses a query it cannot parse. A deleted issue (or one the
account may no longer see) answers 404; `GET /rest/api/3/project/{key}` reads the project.
"""

from __future__ import annotations

import base64
import re
from typing import Any

from aiohttp import web

from tests.fakes.webhook import FakeServer

ISSUE_TYPES = ("Task", "Bug", "Story")


class FakeJira(FakeServer):
    def __init__(self, *, email: str = "bot@acme.example", token: str = "jira-token", project: str = "OPS") -> None:
        super().__init__()
        self.auth = "Basic " + base64.b64encode(f"{email}:{token}".encode()).decode()
        self.project = project
        self.issues: dict[str, dict[str, Any]] = {}
        self.made = 0
        self.forbidden: set[str] = set()  # reads answer 403: the account may no longer browse them
        # Jira's search index is near-real-time: an issue shows in JQL `search_lag` seconds after its create,
        # in the time the test lets pass (`elapse`), so a look-up right after a create may not find it.
        self.search_lag = 0.0
        self.elapsed = 0.0
        self._made_at: dict[str, float] = {}
        self.app.router.add_post("/rest/api/3/issue", self._create)
        self.app.router.add_get("/rest/api/3/issue/{key}", self._get)
        self.app.router.add_get("/rest/api/3/search/jql", self._search)
        self.app.router.add_get("/rest/api/3/project/{key}", self._project)

    def close(self, key: str) -> None:
        """Move it to Done (status category `done`), with a resolution."""
        fields = self.issues[key]["fields"]
        fields["status"] = {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}}
        fields["resolution"] = {"name": "Done"}

    def reopen(self, key: str) -> None:
        """Back to In Progress, the resolution cleared."""
        fields = self.issues[key]["fields"]
        fields["status"] = {"name": "In Progress", "statusCategory": {"key": "indeterminate", "name": "In Progress"}}
        fields["resolution"] = None

    def delete(self, key: str) -> None:
        self.issues.pop(key)

    def forbid(self, key: str) -> None:
        """Reads of the issue answer 403 (the account lost the permission to browse it)."""
        self.forbidden.add(key)

    def elapse(self, seconds: float) -> None:
        """Time passes for the search index (a test's injected sleep calls this)."""
        self.elapsed += seconds

    def rate_limit_next(self, seconds: int = 2, *, kind: str = "") -> None:
        self.throttle_next(seconds)

    async def _project(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        if request.match_info["key"] != self.project:
            message = f"No project could be found with key '{request.match_info['key']}'."
            return web.json_response({"errorMessages": [message], "errors": {}}, status=404)
        return web.json_response({"id": "10000", "key": self.project, "name": "Operations"})

    def throttle_body(self) -> Any:
        return {"errorMessages": ["Rate limit exceeded."], "errors": {}}

    def _error(self, field: str, message: str) -> web.Response:
        return self.violation(f"{field}: {message}", 400, {"errorMessages": [], "errors": {field: message}})

    async def _create(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        fields = (await request.json()).get("fields")
        if not isinstance(fields, dict):
            return self._error("fields", "fields is required")
        problem = self._invalid(fields)
        if problem is not None:
            return self._error(*problem)
        self.made += 1  # keys are never reused after a delete
        key = f"{self.project}-{self.made}"
        issue_id = str(10000 + self.made)
        self._made_at[key] = self.elapsed
        self.issues[key] = {
            "id": issue_id,
            "key": key,
            "fields": {
                **fields,
                "status": {"name": "To Do", "statusCategory": {"key": "new", "name": "To Do"}},
                "resolution": None,
            },
        }
        return web.json_response(
            {"id": issue_id, "key": key, "self": f"{self.url}/rest/api/3/issue/{issue_id}"}, status=201
        )

    def _invalid(self, fields: dict[str, Any]) -> tuple[str, str] | None:
        """(field, message) for what Jira refuses in a create's fields."""
        summary = fields.get("summary")
        description = fields.get("description")
        problems = [
            ("project", "valid project is required", (fields.get("project") or {}).get("key") != self.project),
            (
                "summary",
                "You must specify a summary of the issue.",
                not isinstance(summary, str) or not summary.strip(),
            ),
            (
                "summary",
                "Summary must be less than 255 characters and on one line.",
                isinstance(summary, str) and (len(summary) > 255 or "\n" in summary),
            ),
            (
                "issuetype",
                "valid issue type is required",
                (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES,
            ),
            (
                "description",
                "Operation value must be an Atlassian Document (see the ADF format)",
                description is not None and not _is_adf(description),
            ),
        ]
        return next(((field, message) for field, message, bad in problems if bad), None)

    async def _get(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        if request.match_info["key"] in self.forbidden:
            body = {"errorMessages": ["You do not have the permission to see the specified issue."], "errors": {}}
            return web.json_response(body, status=403)
        issue = self.issues.get(request.match_info["key"])
        if issue is None:
            return web.json_response(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}, status=404
            )
        wanted = [f for f in request.query.get("fields", "").split(",") if f]
        fields = {k: v for k, v in issue["fields"].items() if not wanted or k in wanted}
        return web.json_response({"id": issue["id"], "key": issue["key"], "fields": fields})

    async def _search(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        clauses = [c.strip() for c in re.split(r"\s+AND\s+", request.query.get("jql", ""))]
        matchers = []
        for clause in clauses:
            project = re.fullmatch(r'project\s*=\s*"?([A-Z][A-Z0-9_]*)"?', clause)
            term = re.fullmatch(r'description\s*~\s*"([^"\\]+)"', clause)
            if project:
                prefix = f"{project.group(1)}-"
                matchers.append(lambda issue, prefix=prefix: issue["key"].startswith(prefix))
            elif term:
                word = term.group(1).lower()
                matchers.append(lambda issue, word=word: word in _words(issue["fields"]))
            else:
                message = f"Error in the JQL Query: cannot parse {clause!r}."
                return self.violation(message, 400, {"errorMessages": [message], "errors": {}})
        limit = int(request.query.get("maxResults", "50"))
        wanted = [f for f in request.query.get("fields", "").split(",") if f]
        found = [
            {"id": i["id"], "key": i["key"], "fields": {k: v for k, v in i["fields"].items() if k in wanted}}
            for i in self.issues.values()
            if all(match(i) for match in matchers) and self._indexed(i["key"])
        ]
        return web.json_response({"issues": found[:limit], "isLast": len(found) <= limit})

    def _indexed(self, key: str) -> bool:
        return self.elapsed - self._made_at.get(key, float("-inf")) >= self.search_lag


def _words(fields: dict[str, Any]) -> set[str]:
    """The description's text, as words (how Jira's text search sees it)."""
    text: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if node.get("type") == "text":
                text.append(str(node.get("text", "")))
            for child in node.get("content") or []:
                walk(child)

    walk(fields.get("description"))
    return {word.lower() for word in re.findall(r"\w+", " ".join(text))}


def _is_adf(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.get("type") == "doc"
        and node.get("version") == 1
        and isinstance(node.get("content"), list)
        and all(isinstance(child, dict) and isinstance(child.get("type"), str) for child in node["content"])
    )
