"""A fake PagerDuty Events API v2, for `httpx.MockTransport`."""

from __future__ import annotations

import json
from typing import Any

import httpx


class FakePagerDuty:
    """Answers like the Events API v2: 202 for a valid event, 400 for an invalid one; 429 (with
    `Retry-After`) or 5xx for a while when told to, which PagerDuty asks senders to retry with backoff."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.status: int | None = None  # force an answer, every time
        self.next_statuses: list[int] = []  # force the next answers, one each
        self.attempts: list[dict[str, Any]] = []  # every event received, refused or not

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        self.attempts.append(body)
        forced = self.next_statuses.pop(0) if self.next_statuses else self.status
        if forced == 429:
            return httpx.Response(429, headers={"Retry-After": "3"}, json={"status": "throttled"})
        if forced is not None:
            return httpx.Response(forced, json={"status": "error", "message": "Internal server error"})
        problems = []
        if body.get("event_action") not in ("trigger", "acknowledge", "resolve"):
            problems.append("'event_action' is invalid")
        if not body.get("routing_key"):
            problems.append("'routing_key' is missing")
        if body["event_action"] != "trigger" and not body.get("dedup_key"):
            problems.append("'dedup_key' is required")
        if body["event_action"] == "trigger":
            payload = body.get("payload") or {}
            problems.extend(
                f"'payload.{name}' is missing" for name in ("summary", "source", "severity") if not payload.get(name)
            )
            if payload.get("severity") not in ("critical", "error", "warning", "info"):
                problems.append("'payload.severity' is invalid")
        if problems:
            return httpx.Response(
                400, json={"status": "invalid event", "message": "Event object is invalid", "errors": problems}
            )
        self.events.append(body)
        return httpx.Response(
            202, json={"status": "success", "message": "Event processed", "dedup_key": body["dedup_key"]}
        )
