"""`/status [service]`, `/restart <service>`, `/rollback <service> [deployment-id]`.

Each acks at once (health checks and platform calls take longer than Slack's 3 seconds), then
runs one flow. /status answers in the channel and goes on the timeline inside an incident
channel, and only to the caller elsewhere. /restart and /rollback answer with a confirmation only
the caller sees; the buttons are handled in `listeners/actions/ops.py`.
"""

from __future__ import annotations

import difflib
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import Deps
from bot.exceptions import UsageError
from bot.incidents import access
from bot.ops.confirmations import prepare
from bot.ops.models import Action
from bot.ops.status import status
from bot.slack.adapters import ops as render
from bot.slack.listeners.common import command_text, guarded, usage_reply

USAGE = {
    "status": "/status [service]",
    "restart": "/restart <service>",
    "rollback": "/rollback <service> [deployment-id]",
}


async def incident_in(deps: Deps, channel_id: str | None, person: str) -> int | None:
    """The incident whose channel this is, if any (and `person` may see it)."""
    if not channel_id:
        return None
    incident = await access.in_channel(deps, channel_id=channel_id, person=person)
    return incident.id if incident is not None else None


def parse(deps: Deps, command: str, text: str) -> tuple[str | None, str | None]:
    """(service, deployment id) from the command text, or a UsageError that lists the services."""
    words = text.split()
    configured = deps.settings.config.services
    services = sorted(n for n, s in configured.items() if command == "status" or s.platform is not None)
    known = f" Services: {', '.join(services)}." if services else " No such services are configured in bot.yml."
    usage = USAGE[command]
    if command == "status":
        if len(words) > 1:
            raise UsageError(
                f"/status takes one service at most.{known}", usage=usage, suggestion=f"/status {words[0]}"
            )
        _check_service(command, words, sorted(configured), known)
        return (words[0] if words else None), None
    if not words:
        raise UsageError(f"Name the service to {command}.{known}", usage=usage)
    limit = 2 if command == "rollback" else 1
    if len(words) > limit:
        suggestion = f"/{command} {' '.join(words[:limit])}"
        raise UsageError(f"Too many words for /{command}.{known}", usage=usage, suggestion=suggestion)
    _check_service(command, words, sorted(configured), known)
    return words[0], (words[1] if len(words) > 1 else None)


def _check_service(command: str, words: list[str], configured: list[str], known: str) -> None:
    """A service bot.yml does not name is a usage error, answered with the command it most likely meant.
    With no services at all, the flow itself says how to add them."""
    if not words or not configured or words[0].lower() in configured:
        return
    close = difflib.get_close_matches(words[0].lower(), configured, n=1, cutoff=0.5)
    raise UsageError(
        f"There is no service `{words[0]}`.{known}",
        usage=USAGE[command],
        suggestion=" ".join([f"/{command}", close[0], *words[1:]]) if close else None,
    )


async def _ack_parsed(
    ack: AsyncAck, deps: Deps, name: str, command: dict[str, Any]
) -> tuple[str | None, str | None] | None:
    """Ack with the usage when the text does not parse (None), else ack empty and return the parse."""
    try:
        parsed = parse(deps, name, command_text(command))
    except UsageError as exc:
        await ack(**usage_reply(exc))
        return None
    await ack()
    return parsed


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/status")
    async def status_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        parsed = await _ack_parsed(ack, deps, "status", command)
        if parsed is None:
            return
        service, _ = parsed

        async def work() -> None:
            incident_id = await incident_in(deps, command.get("channel_id"), command["user_id"])
            report = await status(deps, service=service, actor=command["user_id"], incident_id=incident_id)
            await respond(
                text=render.status_text(report),
                blocks=render.status_blocks(report),
                response_type="in_channel" if incident_id is not None else "ephemeral",
                replace_original=False,
            )

        await guarded(respond, work)

    async def deploy_command(action: Action, ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        parsed = await _ack_parsed(ack, deps, action.value, command)
        if parsed is None:
            return
        service, target = parsed
        assert service is not None

        async def work() -> None:
            channel_id = command.get("channel_id")
            plan = await prepare(
                deps,
                action=action,
                service=service,
                user_id=command["user_id"],
                target_id=target,
                incident_id=await incident_in(deps, channel_id, command["user_id"]),
                channel_id=channel_id,
            )
            text, reply = render.plan_reply(plan)
            await respond(text=text, blocks=reply, response_type="ephemeral", replace_original=False)

        await guarded(respond, work)

    @app.command("/restart")
    async def restart_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await deploy_command(Action.RESTART, ack, command, respond)

    @app.command("/rollback")
    async def rollback_command(ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond) -> None:
        await deploy_command(Action.ROLLBACK, ack, command, respond)
