"""Every Bolt request: a request id on the logs, commands counted by subcommand, time to ack measured."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncApp
from slack_bolt.context.ack.async_ack import AsyncAck as BoltAck
from slack_bolt.request.async_request import AsyncBoltRequest
from slack_bolt.response import BoltResponse

from bot import logs
from bot.deps import Deps
from bot.incidents import grammar
from bot.observability import Metrics, install_slack_counter, request_started
from bot.slack.front import ACKED_EARLY

log = logging.getLogger(__name__)


class TimedAck(BoltAck):
    """Bolt's ack that reports, once, how long the request took to be acknowledged."""

    def __init__(self, on_ack: Callable[[], None]) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Bolt's AsyncAck.__init__ has no annotations
        self._on_ack: Callable[[], None] | None = on_ack

    async def __call__(self, *args: Any, **kwargs: Any) -> BoltResponse:
        response = await super().__call__(*args, **kwargs)
        if self._on_ack is not None:
            report, self._on_ack = self._on_ack, None
            try:
                report()
            except Exception:
                log.debug("could not record ack latency", exc_info=True)
        return response


def classify(body: dict[str, Any]) -> tuple[str, str, str]:
    """(kind, command, subcommand) of a Bolt request body, with bounded label values."""
    if "command" in body:
        command = str(body.get("command") or "")
        command = command if command in {"/incident", "/status", "/restart", "/rollback"} else "other"
        sub = ""
        if command == "/incident":
            try:
                sub = grammar.parse(str(body.get("text") or "")).name
            except Exception:  # UsageError, or anything else: a label, never a crash
                sub = "invalid"
            else:
                sub = sub if sub in grammar.USAGE else "other"
        return "command", command, sub
    kind = str(body.get("type") or "unknown")
    if kind == "event_callback":
        return "event", "", ""
    if kind in {"block_actions", "view_submission", "view_closed", "shortcut", "message_action", "block_suggestion"}:
        return kind, "", ""
    return "other", "", ""


def observability_middleware(metrics: Metrics) -> Callable[..., Awaitable[Any]]:
    async def observe(req: AsyncBoltRequest, next: Callable[[], Awaitable[Any]]) -> Any:
        # Over HTTP the server set both for this request's task; Socket Mode has no such task per request.
        over_http = req.mode != "socket_mode"
        if not over_http or logs.current_request_id() is None:
            logs.bind_request_id()
        started = request_started.get() if over_http else None
        if started is None:
            started = time.perf_counter()
            request_started.set(started)
        body = req.body if isinstance(req.body, dict) else {}
        kind, command, sub = classify(body)
        if kind == "command":
            metrics.commands.labels(command=command, subcommand=sub).inc()
        else:
            metrics.interactions.labels(kind=kind).inc()

        if req.context.get(ACKED_EARLY):
            return await next()  # the front door answered Slack and timed it

        def report() -> None:
            metrics.observe_ack(kind, time.perf_counter() - started)

        req.context["ack"] = TimedAck(report)
        return await next()

    return observe


def register(app: AsyncApp, deps: Deps) -> None:
    metrics = deps.metrics
    app.middleware(observability_middleware(metrics))
    install_slack_counter(app.client, metrics)
