"""What every listener shares: finding the incident a request is about, and replying to errors."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.exceptions import BotError, UsageError
from bot.incidents import access, grammar
from bot.incidents.models import Incident
from bot.incidents.service import FirstWrite
from bot.slack import blocks
from bot.slack.text import error_text, escape, unescape

log = logging.getLogger(__name__)


def command_text(command: dict[str, Any]) -> str:
    """A slash command's text as typed: Slack sends `&`, `<` and `>` as entities, and every command is
    parsed (and stored) from this, once, so nothing is escaped twice on the way out."""
    return unescape(str(command.get("text") or ""))


def known(deps: Deps) -> grammar.Known:
    """What the grammar suggests from: the services, and the playbooks (by id, title and keywords)."""
    registry = deps.playbooks
    services = frozenset(deps.settings.config.services)
    if registry is None:
        return grammar.Known(services=services)
    try:
        playbook_ids = frozenset(registry.ids())
    except Exception:
        return grammar.Known(services=services)
    return grammar.Known(services=services, playbooks=playbook_ids, playbooks_like=registry.matching)


def form_playbooks(deps: Deps) -> list[tuple[str, str]]:
    """(id, title) of every playbook for a declare form; a broken registry must not stop a declaration."""
    registry = deps.playbooks
    if registry is None:
        return []
    try:
        return [(p.id, p.title) for p in registry.all()]
    except Exception:
        log.warning("could not list playbooks for the declare form", exc_info=True)
        return []


async def find_incident(deps: Deps, *, number: int | None, channel_id: str | None, usage: str, person: str) -> Incident:
    """`INC-<n>` wins; else the incident whose channel this is; else a usage error that says how to name one.

    Only incidents `person` may see are found: a private one is, to anyone else, one that does not exist.
    """
    if number is not None:
        return await access.find(deps, number=number, person=person)
    if channel_id:
        incident = await access.in_channel(deps, channel_id=channel_id, person=person)
        if incident is not None:
            return incident
    example = usage.replace("/incident ", "/incident INC-7 ", 1)
    raise UsageError(
        "This is not an incident channel: run it in the incident's channel or name the incident.",
        usage=example,
    )


def usage_reply(exc: UsageError) -> dict[str, Any]:
    """The message for a usage error (text and blocks), for an `ack(...)` or a `respond(...)`."""
    return {
        "text": escape(f"{exc} Usage: {exc.usage}"),
        "blocks": blocks.usage_blocks(error_text(exc), exc.usage, exc.suggestion),
        "response_type": "ephemeral",
    }


async def reply_error(respond: AsyncRespond, exc: BaseException) -> None:
    """Every failure the user caused or can act on gets an ephemeral answer; the rest is logged with a trace."""
    if isinstance(exc, UsageError):
        await respond(**usage_reply(exc), replace_original=False)
        return
    if isinstance(exc, BotError):
        await respond(text=f"⚠️ {error_text(exc)}", response_type="ephemeral", replace_original=False)
        return
    log.exception("unexpected error in a listener", exc_info=exc)
    await respond(
        text="⚠️ Something went wrong on our side; it is logged. Nothing you typed was lost: try again, "
        "or check `/incident timeline`.",
        response_type="ephemeral",
        replace_original=False,
    )


async def guarded(respond: AsyncRespond, work: Callable[[], Awaitable[Any]]) -> None:
    """Run slow work after the ack; any exception becomes a reply instead of a silent failure."""
    try:
        await work()
    except Exception as exc:
        try:
            await reply_error(respond, exc)
        except Exception:
            log.exception("could not tell the user about an error")


@dataclass
class CommandContext:
    """Handed to every /incident subcommand handler (`commands/incident.py` HANDLERS)."""

    deps: Deps
    command: grammar.Command
    user_id: str
    channel_id: str
    respond: AsyncRespond
    client: AsyncWebClient
    trigger_id: str | None = None
    # The request's replay claim, for its first write's transaction (`replay.CarriedClaim`, declare only).
    claim: FirstWrite | None = None

    async def incident(self) -> Incident:
        return await find_incident(
            self.deps,
            number=self.command.incident,
            channel_id=self.channel_id,
            usage=grammar.USAGE.get(self.command.name, "/incident help"),
            person=self.user_id,
        )

    async def ephemeral(self, text: str, blocks: list[dict[str, Any]] | None = None) -> None:
        await self.respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)


SubcommandHandler = Callable[[CommandContext], Awaitable[None]]
