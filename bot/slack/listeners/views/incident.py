"""Modal submissions: declare, status update, resolve.

A submission is acked at once (with field errors when invalid, which keeps the modal open);
the flow runs after the ack and its result reaches the user as an ephemeral message or a DM.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable
from dataclasses import asdict, dataclass
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_sdk.web.async_client import AsyncWebClient

from bot.config import Severity
from bot.deps import Deps
from bot.exceptions import BotError, ChatError
from bot.incidents import access, flows
from bot.incidents.flows import Outcome
from bot.incidents.grammar import MAX_TITLE, Known, clean
from bot.incidents.models import Status
from bot.slack import blocks
from bot.slack.api import call
from bot.slack.listeners.common import known
from bot.slack.text import clip, error_text, escape

log = logging.getLogger(__name__)


def form_value(view: dict[str, Any], block_id: str) -> str | None:
    element = view.get("state", {}).get("values", {}).get(block_id, {}).get("value", {})
    if element.get("type") in {"static_select", "external_select"} or "selected_option" in element:
        option = element.get("selected_option") or {}
        return option.get("value")
    value = element.get("value")
    return clean(value).strip() if isinstance(value, str) else None


def form_checked(view: dict[str, Any], block_id: str) -> bool:
    """A form's one-option checkbox is ticked."""
    element = view.get("state", {}).get("values", {}).get(block_id, {}).get("value", {})
    return bool(element.get("selected_options"))


async def tell(
    client: AsyncWebClient, *, user: str, channel: str | None, text: str, extra: list[dict[str, Any]] | None = None
) -> None:
    """Ephemeral in the channel the form came from when the bot can post there; a DM otherwise."""
    body = [blocks.mrkdwn(text), *(extra or [])] if extra else None
    if channel:
        try:
            await call("reply", client.chat_postEphemeral(channel=channel, user=user, text=text, blocks=body))
            return
        except ChatError:
            pass
    try:
        await call("reply by DM", client.chat_postMessage(channel=user, text=text, blocks=body))
    except ChatError:
        log.warning("could not tell %s: %s", user, text)


async def tell_declared(
    client: AsyncWebClient, *, user: str, channel: str | None, outcome: Outcome, how: str = "declared"
) -> None:
    """The declarer learns the channel, or that setup failed and how to retry it."""
    incident = outcome.incident
    where = f"<#{incident.channel_id}>" if incident.channel_id else "(no channel yet)"
    text = f"🚨 {incident.ref} {how}: {where}"
    extra = None
    if outcome.problems:
        text += f"\n⚠️ {incident.ref} is saved, but {escape('; '.join(outcome.problems))}. Press Retry setup."
        extra = [blocks.retry_setup(incident.id)]
    await tell(client, user=user, channel=channel, text=text, extra=extra)


def title_errors(title: str) -> dict[str, str] | None:
    """Field errors for a declare form's title (the modal stays open), or None when it is fine."""
    if not title:
        return {"title": "Say what is broken, in a few words."}
    if len(title) > MAX_TITLE:
        return {"title": f"Keep it under {MAX_TITLE} characters."}
    return None


@dataclass(frozen=True)
class DeclareForm:
    """What a declare form says, named as `flows.declare` takes it (`**asdict(form)`)."""

    title: str
    severity: Severity | None
    service_name: str | None
    playbook_id: str | None
    description: str
    private: bool = False


def unknown_errors(*, service: str | None, playbook: str | None, known: Known) -> dict[str, str]:
    """Field errors for a service or playbook the bot no longer knows (bot.yml or playbooks changed since
    the form opened), as `/incident declare service:…` refuses them: never stored as said."""
    errors: dict[str, str] = {}
    if service and known.services and service not in known.services:
        errors["service"] = f"{clip(service, 40)} is no longer in bot.yml; pick another, or none."
    if playbook and known.playbooks and playbook not in known.playbooks:
        errors["playbook"] = f"No playbook {clip(playbook, 40)} any more; pick another, or none."
    return errors


async def ack_declare_form(ack: AsyncAck, view: dict[str, Any], *, known: Known) -> DeclareForm | None:
    """Ack a declare form: with field errors and None (the modal stays open), or empty and what it says."""
    title = form_value(view, "title") or ""
    service, playbook = form_value(view, "service"), form_value(view, "playbook")
    errors = (title_errors(title) or {}) | unknown_errors(service=service, playbook=playbook, known=known)
    if errors:
        await ack(response_action="errors", errors=errors)
        return None
    await ack()
    severity = form_value(view, "severity")
    return DeclareForm(
        title=title,
        severity=Severity(severity) if severity in {s.value for s in Severity} else None,
        service_name=service,
        playbook_id=playbook,
        description=form_value(view, "description") or "",
        private=form_checked(view, "private"),
    )


async def after_submit(
    client: AsyncWebClient, *, user: str, channel: str | None, work: Awaitable[Outcome], declared: str | None = None
) -> None:
    """Run the flow a form asked for, after its ack; the user hears of errors, setup problems, or the new incident."""
    try:
        outcome = await work
    except BotError as exc:
        await tell(client, user=user, channel=channel, text=f"⚠️ {error_text(exc)}")
        return
    if declared is not None:
        await tell_declared(client, user=user, channel=channel, outcome=outcome, how=declared)
    elif outcome.problems:
        await tell(client, user=user, channel=outcome.incident.channel_id, text="⚠️ " + "; ".join(outcome.problems))


def _number(view: dict[str, Any]) -> int:
    metadata = str(view.get("private_metadata") or "")
    return int(metadata) if metadata.isascii() and metadata.isdigit() else 0


def register(app: AsyncApp, deps: Deps) -> None:
    @app.view(blocks.CallbackId.DECLARE)
    async def declare_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        form = await ack_declare_form(ack, view, known=known(deps))
        if form is None:
            return
        user = body["user"]["id"]
        work = flows.declare(deps, declared_by=user, **asdict(form))
        await after_submit(
            client, user=user, channel=view.get("private_metadata") or None, work=work, declared="declared"
        )

    @app.view(blocks.CallbackId.UPDATE)
    async def update_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        status = form_value(view, "status")
        if status not in {s.value for s in Status} or status == Status.RESOLVED:
            await ack(response_action="errors", errors={"status": "Pick investigating, identified or monitoring."})
            return
        await ack()
        user = body["user"]["id"]
        number = _number(view)

        async def work() -> Outcome:
            await access.find(deps, number=number, person=user)  # the form's incident number is a hint
            return await flows.update_status(
                deps, incident_id=number, status=Status(status), message=form_value(view, "message") or "", actor=user
            )

        await after_submit(client, user=user, channel=None, work=work())

    @app.view(blocks.CallbackId.RESOLVE)
    async def resolve_submitted(
        ack: AsyncAck, body: dict[str, Any], view: dict[str, Any], client: AsyncWebClient
    ) -> None:
        await ack()
        user = body["user"]["id"]
        number = _number(view)

        async def work() -> Outcome:
            await access.find(deps, number=number, person=user)
            return await flows.resolve(deps, incident_id=number, summary=form_value(view, "summary") or "", actor=user)

        await after_submit(client, user=user, channel=None, work=work())
