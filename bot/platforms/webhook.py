"""A generic, signed webhook for teams with their own deploy tooling.

The contract a receiver implements (one URL, one verb):

Request: `POST <webhook.url>` with a JSON body

    {"action": "current" | "list" | "restart" | "rollback" | "status",
     "service": "<name in bot.yml>",
     "timestamp": <unix seconds>,
     "request_id": "<uuid>",
     "deployment_id": "<id>",              # status only
     "target_deployment_id": "<id>",       # rollback only (always set: the bot picks the target)
     "limit": <n>}                         # list only

and headers

    Content-Type: application/json
    X-Timestamp: <the same unix seconds>
    X-Request-Id: <the same uuid>
    X-Signature-256: sha256=<hex HMAC-SHA256 of the raw body, keyed with the secret>

The secret is read from the environment variable `webhook.secret_env` names. The timestamp is
inside the signed body, so a receiver checks the signature with a constant-time comparison,
then refuses requests more than 5 minutes old (replays). Without `secret_env` the request is
sent unsigned; do that only on a private network.

Response: 2xx with JSON. `current`, `restart`, `rollback` and `status` answer

    {"deployment": {"id": "...", "status": "queued|building|deploying|success|failed|cancelled|removed",
                    "created_at": "<ISO 8601>", "url": "...", "can_rollback": true, "meta": {...}}}

(`{"deployment": null}` when nothing is live; the object may also be the whole body), and `list`
answers `{"deployments": [...]}`, newest first. Optional, in any deployment object:

    "healthy": false,                      # a JSON boolean: it did not run healthily while live
    "unhealthy_reason": "crash-looped",    # why, shown to the person choosing (with healthy: false)
    "replaced_at": "<ISO 8601>"            # when it stopped being live (replaced)

`meta` is the receiver's own (a commit message, a version: shown as the deployment's label) and is passed on
as it is, but for one key the bot reads:

    "meta": {"note": "waiting for approval in Spinnaker"}

`note` is the receiver telling, in its own words, what state the deployment is in that the status
vocabulary above cannot say (held for an approval, waiting for a deploy window, queued behind another
release). While the bot follows a restart or rollback, the newest note is shown in italics under the
progress message (and a changed note updates it at once); when the deployment ends failed or cancelled,
or the follow gives up, the report ends with it ("no final status ... (last seen: queued, waiting for
approval in Spinnaker)"), and so do the audit log and the incident's timeline. It is plain text: one
line (newlines and runs of spaces become one space), at most 200 characters (`NOTE_LIMIT`; a longer one is
cut with "…"), and Slack markup in it is not followed: `&`, `<` and `>` are escaped and the Slack section
showing it is `verbatim`, so a note cannot mention anyone (`<!channel>`, `<@U…>`, a bare `@here`) nor carry
a link (`<https://…|text>`, nor a bare URL turned into one). A note that is not a string, or is blank, is
dropped.

A deployment with `healthy: false` is never the default rollback target (/rollback takes the
newest earlier one without it); it can still be picked by ID, and /status and the confirmation say
why. `replaced_at` is shown in the confirmation as "Live from <created_at> until <replaced_at>".
Left out (or `healthy` not a boolean, `replaced_at` not a time), nothing is assumed: any
`can_rollback` deployment may be the default, and the confirmation says the receiver does not
say until when. restart/rollback answer as soon as the work
is queued; the bot then asks `status` every few seconds until a final status. A 2xx to them
whose body names no deployment is taken as "queued, outcome unknown", never as a refusal.

Errors: 401/403 for a bad signature (shown as an auth error), 429 with `Retry-After`, other
4xx/5xx with `{"error": "<message for the on-call engineer>"}`.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import httpx

from bot.clock import Clock, SystemClock
from bot.config import WebhookTarget
from bot.exceptions import PlatformAuthError, PlatformError, PlatformUnsure
from bot.platforms.base import (
    Deployment,
    DeployStatus,
    pick_rollback_target,
    typed_as_shown,
)
from bot.platforms.follow import RealTimer, Timer
from bot.platforms.http import DEFAULT_REQUEST_TIMEOUT, Endpoint, dumps, json_of, one_line, parse_time
from bot.platforms.reads import action_request, snapshot_before_rollback

NAME = "deploy webhook"
SIGNATURE_HEADER = "X-Signature-256"
TIMESTAMP_HEADER = "X-Timestamp"
REQUEST_ID_HEADER = "X-Request-Id"
NOTE_LIMIT = 200  # characters of a receiver's `meta.note` shown (see the contract above)

_STATUS = {
    "queued": DeployStatus.QUEUED,
    "pending": DeployStatus.QUEUED,
    "building": DeployStatus.BUILDING,
    "deploying": DeployStatus.DEPLOYING,
    "in_progress": DeployStatus.DEPLOYING,
    "in-progress": DeployStatus.DEPLOYING,
    "running": DeployStatus.DEPLOYING,
    "success": DeployStatus.SUCCESS,
    "succeeded": DeployStatus.SUCCESS,
    "ready": DeployStatus.SUCCESS,
    "done": DeployStatus.SUCCESS,
    "failed": DeployStatus.FAILED,
    "failure": DeployStatus.FAILED,
    "error": DeployStatus.FAILED,
    "cancelled": DeployStatus.CANCELLED,
    "canceled": DeployStatus.CANCELLED,
    "removed": DeployStatus.REMOVED,
}


def sign(secret: str, body: bytes) -> str:
    """The `X-Signature-256` value for a body."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """What a receiver does (and what the tests' receiver does)."""
    return signature is not None and hmac.compare_digest(sign(secret, body), signature)


class WebhookPlatform:
    kind = "webhook"
    display_name = NAME

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        service: str,
        target: WebhookTarget,
        secret: str | None,
        clock: Clock | None = None,
        timeout: float = DEFAULT_REQUEST_TIMEOUT,
        history: int = 20,
        timer: Timer | None = None,
    ) -> None:
        self.clock = clock or SystemClock()
        self.endpoint = Endpoint(http, display_name=NAME, timeout=timeout, clock=self.clock)
        self.service = service
        self.target = target
        self.secret = secret
        self.history = history
        self.timer: Timer = timer or RealTimer()  # the wait before a read is asked again

    async def current_deployment(self) -> Deployment | None:
        body = await self._call("current")
        if isinstance(body, dict) and "deployment" in body and body["deployment"] is None:
            return None
        return _one(body)

    async def list_deployments(self, *, limit: int = 10) -> list[Deployment]:
        body = await self._call("list", limit=limit)
        items = body.get("deployments") if isinstance(body, dict) else body
        if not isinstance(items, list):
            raise PlatformError("the deploy webhook answered `list` without a `deployments` list", platform=NAME)
        return [_deployment(item) for item in items if isinstance(item, dict)]

    async def snapshot(self, *, limit: int = 10) -> tuple[list[Deployment], Deployment | None]:
        deployments, current = await asyncio.gather(self.list_deployments(limit=limit), self.current_deployment())
        return deployments, current

    async def restart(self, redeploys: str | None = None) -> Deployment:
        return await self._act("restart")

    def blocker(self, action: str, deployments: Sequence[Deployment], current: Deployment | None) -> str:
        return ""

    def restart_deploys(self, deployments: Sequence[Deployment], current: Deployment | None) -> Deployment | None:
        return None

    async def rollback(self, target_id: str | None = None) -> Deployment:
        deployments, current = await snapshot_before_rollback(self, target_id, history=self.history, timer=self.timer)
        target = pick_rollback_target(deployments, current, target_id, read=self.canonical_id)
        new = await self._act("rollback", target_deployment_id=target.id)
        return replace(new, meta={**new.meta, "rollback_to": target.id})

    def canonical_id(self, typed: str) -> str:
        return typed_as_shown(typed)

    async def deployment_status(self, deployment_id: str) -> Deployment:
        return _one(await self._call("status", deployment_id=deployment_id))

    async def _act(self, action: str, **fields: Any) -> Deployment:
        """A restart or rollback: a 2xx means the receiver took it, whatever its body says.

        An answer that names no deployment is therefore not a refusal ("try again" would deploy
        twice) but an unknown outcome, for the person to check before running it again.
        """
        response = await action_request(lambda: self._call(action, raw=True, **fields))
        try:
            return _one(json_of(response, platform=NAME))
        except PlatformError as exc:
            raise PlatformUnsure(
                f"the deploy webhook took the {action} (HTTP {response.status_code}) but {exc}; "
                "watch it in your deploy tool",
                platform=NAME,
                reason=f"HTTP {response.status_code}, but {exc}",
            ) from exc

    async def _call(self, action: str, *, raw: bool = False, **fields: Any) -> Any:
        if self.target.secret_env and not self.secret:
            raise PlatformAuthError(
                f"{self.target.secret_env} is not set: the deploy webhook secret is missing", platform=NAME
            )
        timestamp = int(self.clock.now().timestamp())
        request_id = str(uuid.uuid4())
        body = dumps(
            {"action": action, "service": self.service, "timestamp": timestamp, "request_id": request_id, **fields}
        )
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            REQUEST_ID_HEADER: request_id,
        }
        if self.secret:
            headers[SIGNATURE_HEADER] = sign(self.secret, body)
        response = await self.endpoint.send("POST", self.target.url, headers=headers, content=body)
        return response if raw else json_of(response, platform=NAME)


def _one(body: Any) -> Deployment:
    """`{"deployment": {...}}` or the object itself; PlatformError without a deployment `id`."""
    item = body["deployment"] if isinstance(body, dict) and "deployment" in body else body
    if not isinstance(item, dict) or not item.get("id"):
        raise PlatformError("the deploy webhook answered without a deployment `id`", platform=NAME)
    return _deployment(item)


def _deployment(item: dict[str, Any]) -> Deployment:
    raw = str(item.get("status") or "").strip().lower()
    raw_meta = item.get("meta")
    meta: dict[str, Any] = _with_note(raw_meta) if isinstance(raw_meta, dict) else {}
    return Deployment(
        id=str(item.get("id")),
        status=_STATUS.get(raw, DeployStatus.UNKNOWN),
        created_at=parse_time(item.get("created_at")),
        url=item.get("url") if isinstance(item.get("url"), str) else None,
        can_rollback=bool(item.get("can_rollback", False)),
        meta={**meta, "platform_status": raw},
        doubt=_unhealthy(item),
        live_until=parse_time(item.get("replaced_at")),
    )


def _with_note(meta: dict[str, Any]) -> dict[str, Any]:
    """The receiver's meta with its `note` made one line of at most NOTE_LIMIT characters (or dropped): it is
    shown in every progress update and carried into the report, the audit log and the timeline."""
    out = {key: value for key, value in meta.items() if key != "note"}
    note = meta.get("note")
    text = one_line(note, NOTE_LIMIT) if isinstance(note, str) else ""
    if text:
        out["note"] = text
    return out


def _unhealthy(item: dict[str, Any]) -> str:
    """Why the receiver says the deployment did not run healthily, or "" when it does not say so.

    Only a JSON `false` counts: a receiver that leaves the field out, or sends something else,
    has said nothing, and its deployments stay default targets as before.
    """
    if item.get("healthy") is not False:
        return ""
    reason = item.get("unhealthy_reason")
    if isinstance(reason, str) and reason.strip():
        text = " ".join(reason.split())
        return text if len(text) <= 200 else text[:199] + "…"
    return "the deploy webhook reports it did not run healthily"
