"""A local Linear GraphQL API (`POST /graphql`) for issues (specs/README.md, "Issue trackers").

Documents are validated and executed with graphql-core against the part of Linear's schema the bot
uses (`issueCreate(input: IssueCreateInput!)`, `issue(id: String!)`, `issues(filter: IssueFilter)`, which as
Linear's leaves out archived issues, trashed ones among them, unless `includeArchived: true`), so a
misspelt field or a wrong
variable type fails as it would at Linear. `IssueCreateInput.id` takes the client's UUID v4 (an id
already used is refused, as Linear refuses it). Auth: `Authorization: <api key>` (no `Bearer` for API
keys). Rate limits answer with an error whose `extensions.code` is `RATELIMITED` and the reset time
in `X-RateLimit-Requests-Reset` (epoch milliseconds). Deleting an issue trashes it (`trashed: true` and
`archivedAt` set, still read by id) until it is restored (`issueUnarchive`: both cleared) or purged; once
purged, reading it is the error "Entity not found: Issue" (`INPUT_ERROR`). A key that lost access to the
team gets the same error for its issues, and "Entity not found: Team" for the team itself.
"""

from __future__ import annotations

import re
import time
from typing import Any

import graphql
from aiohttp import web

from tests.fakes.webhook import FakeServer, Fault

SCHEMA = graphql.build_schema(
    """
    type Query {
      issue(id: String!): Issue!
      team(id: String!): Team!
      issues(filter: IssueFilter, first: Int, includeArchived: Boolean): IssueConnection!
    }
    type Mutation { issueCreate(input: IssueCreateInput!): IssuePayload! }
    input IDComparator { eq: ID, neq: ID, in: [ID!], nin: [ID!] }
    input IssueFilter { id: IDComparator }
    type IssueConnection { nodes: [Issue!]! }
    input IssueCreateInput {
      id: String
      teamId: String!
      title: String
      description: String
      priority: Int
      assigneeId: String
      labelIds: [String!]
    }
    type IssuePayload { success: Boolean! lastSyncId: Float! issue: Issue }
    type Issue {
      id: ID! identifier: String! title: String! description: String url: String! state: WorkflowState!
      trashed: Boolean archivedAt: DateTime
    }
    type WorkflowState { id: ID! name: String! type: String! }
    type Team { id: ID! key: String! name: String! }
    scalar DateTime
    """
)


class FakeLinear(FakeServer):
    def __init__(self, *, api_key: str = "lin_api_test", team_id: str = "team-eng", team_key: str = "ENG") -> None:
        super().__init__()
        self.api_key = api_key
        self.team_id = team_id
        self.team_key = team_key
        self.issues: dict[str, dict[str, Any]] = {}
        self.made = 0
        self.readable = True  # False: the key lost access to the team (its issues and the team are "not found")
        self.forbidden: set[str] = set()  # reads answer a FORBIDDEN error: the key may not read them
        self.app.router.add_post("/graphql", self._graphql)

    def close(self, key: str, *, how: str = "completed") -> None:
        self.issues[key]["state"] = {"id": f"state-{how}", "name": how.title(), "type": how}

    def reopen(self, key: str) -> None:
        self.issues[key]["state"] = {"id": "state-started", "name": "In Progress", "type": "started"}

    def delete(self, key: str, *, purge: bool = False) -> None:
        """Into the trash (as Linear's delete does), or gone for good (`purge`)."""
        if purge:
            self.issues.pop(key)
        else:
            self.issues[key].update(trashed=True, archivedAt=time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()))

    def restore(self, key: str) -> None:
        """Out of the trash (Linear's `issueUnarchive`), as it was."""
        self.issues[key].update(trashed=None, archivedAt=None)

    def forbid(self, key: str) -> None:
        """Reads of the issue answer Linear's FORBIDDEN error."""
        self.forbidden.add(key)

    def lose_access(self) -> None:
        """The key can no longer read the team (removed from a private team, or the team is gone)."""
        self.readable = False

    def rate_limit_next(self, seconds: int = 2, *, kind: str = "") -> None:
        reset = str(int((time.time() + seconds) * 1000))
        body = {"errors": [{"message": "Rate limit exceeded", "extensions": {"code": "RATELIMITED"}}]}
        self.inject(Fault(400, {"X-RateLimit-Requests-Reset": reset}, body))

    def _issue_create(self, _: Any, info: Any, input: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
        if input["teamId"] != self.team_id:
            raise graphql.GraphQLError("Entity not found: Team", extensions={"code": "INVALID_INPUT"})
        if not (input.get("title") or "").strip():
            raise graphql.GraphQLError("title must not be empty", extensions={"code": "INVALID_INPUT"})
        number = self.made + 1  # identifiers are never reused after a delete
        issue_id = input.get("id") or f"9f1c{number:04d}-0000-4000-8000-000000000000"
        if not re.fullmatch(r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}", issue_id):
            raise graphql.GraphQLError("id must be a UUID v4", extensions={"code": "INVALID_INPUT"})
        if issue_id in self.issues:
            raise graphql.GraphQLError("Entity already exists: Issue", extensions={"code": "INVALID_INPUT"})
        self.made = number
        identifier = f"{self.team_key}-{number}"
        issue = {
            "id": issue_id,
            "identifier": identifier,
            "title": input["title"],
            "description": input.get("description"),
            "url": f"https://linear.app/acme/issue/{identifier}",
            "state": {"id": "state-backlog", "name": "Backlog", "type": "backlog"},
        }
        self.issues[issue_id] = issue
        return {"success": True, "lastSyncId": float(number), "issue": issue}

    def _team(self, _: Any, info: Any, id: str) -> dict[str, Any]:  # noqa: A002
        if id != self.team_id or not self.readable:
            raise graphql.GraphQLError("Entity not found: Team", extensions={"code": "INPUT_ERROR"})
        return {"id": self.team_id, "key": self.team_key, "name": "Engineering"}

    def _issue(self, _: Any, info: Any, id: str) -> dict[str, Any]:  # noqa: A002
        if id in self.forbidden:
            raise graphql.GraphQLError(
                "Forbidden: you do not have access to this issue", extensions={"code": "FORBIDDEN", "statusCode": 403}
            )
        if id not in self.issues or not self.readable:
            raise graphql.GraphQLError(
                "Entity not found: Issue",
                extensions={
                    "code": "INPUT_ERROR",
                    "statusCode": 400,
                    "userError": True,
                    "userPresentableMessage": "Could not find referenced Issue.",
                },
            )
        return self.issues[id]

    def _issues(
        self,
        _: Any,
        info: Any,
        filter: dict[str, Any] | None = None,  # noqa: A002
        first: int = 50,
        includeArchived: bool = False,  # noqa: N803
    ) -> dict[str, Any]:
        """As Linear's list: archived issues (the trashed among them) only with `includeArchived`."""
        wanted = ((filter or {}).get("id") or {}).get("eq")
        nodes = [
            i
            for key, i in self.issues.items()
            if (wanted is None or key == wanted) and (includeArchived or not i.get("archivedAt"))
        ]
        return {"nodes": nodes[:first]}

    async def _graphql(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != self.api_key:
            errors = [
                {
                    "message": "Authentication required, not authenticated",
                    "extensions": {"code": "AUTHENTICATION_ERROR"},
                }
            ]
            return web.json_response({"errors": errors}, status=400)
        body = await request.json()
        query = body.get("query")
        if not isinstance(query, str):
            return self.violation("no query", 400, {"errors": [{"message": "Must provide query string."}]})
        try:
            document = graphql.parse(query)
        except graphql.GraphQLError as exc:
            return self.violation(f"syntax: {exc.message}", 400, {"errors": [{"message": exc.message}]})
        problems = graphql.validate(SCHEMA, document)
        if problems:
            messages = [p.message for p in problems]
            return self.violation("; ".join(messages), 400, {"errors": [{"message": m} for m in messages]})
        root = {"issueCreate": self._issue_create, "issue": self._issue, "issues": self._issues, "team": self._team}
        result = await graphql.graphql(
            SCHEMA,
            query,
            root_value=_Root(root),
            variable_values=body.get("variables"),
        )
        out: dict[str, Any] = {"data": result.data}
        if result.errors:
            out["errors"] = [{"message": e.message, "extensions": e.extensions or {}} for e in result.errors]
            if any("Variable" in e.message for e in result.errors):
                self.violations.append("; ".join(e.message for e in result.errors))
        return web.json_response(out)


class _Root:
    """Root resolvers: graphql-core calls `root.field(info, **args)` for callables on the root value."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self._fields = fields

    def __getattr__(self, name: str) -> Any:
        resolver = self._fields.get(name)
        if resolver is None:
            raise AttributeError(name)
        return lambda info, **args: resolver(None, info, **args)
