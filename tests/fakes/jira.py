"""A local Jira Cloud REST API v3 for issues (specs/README.md, "Issue trackers").

`POST /rest/api/3/issue` needs basic auth (email:API token), `fields.project.key`, a one-line
`summary` of at most 255 characters, `issuetype.name`, and a `description` in Atlassian Document
Format (v3 refuses a plain string). `GET /rest/api/3/issue/{key}?fields=status,resolution` answers
`fields.status.statusCategory.key` (`new`, `indeterminate`, `done`). Rate limits: 429 `Retry-After`.
"""

from __future__ import annotations

import base64
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
        self.app.router.add_post("/rest/api/3/issue", self._create)
        self.app.router.add_get("/rest/api/3/issue/{key}", self._get)

    def close(self, key: str) -> None:
        """Move it to Done (status category `done`), with a resolution."""
        fields = self.issues[key]["fields"]
        fields["status"] = {"name": "Done", "statusCategory": {"key": "done", "name": "Done"}}
        fields["resolution"] = {"name": "Done"}

    def rate_limit_next(self, seconds: int = 2, *, kind: str = "") -> None:
        self.throttle_next(seconds)

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
        if (fields.get("project") or {}).get("key") != self.project:
            return self._error("project", "valid project is required")
        summary = fields.get("summary")
        if not isinstance(summary, str) or not summary.strip():
            return self._error("summary", "You must specify a summary of the issue.")
        if len(summary) > 255 or "\n" in summary:
            return self._error("summary", "Summary must be less than 255 characters and on one line.")
        if (fields.get("issuetype") or {}).get("name") not in ISSUE_TYPES:
            return self._error("issuetype", "valid issue type is required")
        description = fields.get("description")
        if description is not None and not _is_adf(description):
            return self._error("description", "Operation value must be an Atlassian Document (see the ADF format)")
        key = f"{self.project}-{len(self.issues) + 1}"
        issue_id = str(10000 + len(self.issues) + 1)
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

    async def _get(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.auth:
            return web.json_response({"errorMessages": ["You are not authenticated."]}, status=401)
        issue = self.issues.get(request.match_info["key"])
        if issue is None:
            return web.json_response(
                {"errorMessages": ["Issue does not exist or you do not have permission to see it."]}, status=404
            )
        wanted = [f for f in request.query.get("fields", "").split(",") if f]
        fields = {k: v for k, v in issue["fields"].items() if not wanted or k in wanted}
        return web.json_response({"id": issue["id"], "key": issue["key"], "fields": fields})


def _is_adf(node: Any) -> bool:
    return (
        isinstance(node, dict)
        and node.get("type") == "doc"
        and node.get("version") == 1
        and isinstance(node.get("content"), list)
        and all(isinstance(child, dict) and isinstance(child.get("type"), str) for child in node["content"])
    )
