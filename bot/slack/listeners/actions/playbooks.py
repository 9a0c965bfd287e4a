"""Playbook buttons (Done, Skip, Run action, the Reopen menu, the picker) and `/incident playbook <id>`."""

from __future__ import annotations

import functools
import re
from collections.abc import Awaitable, Callable
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import Deps
from bot.exceptions import BotError, UsageError
from bot.ops.confirmations import prepare as prepare_ops
from bot.ops.models import Action as OpsAction
from bot.playbooks import flows
from bot.playbooks.models import StepStatus
from bot.slack.adapters import ops as render
from bot.slack.adapters.playbooks import PlaybookActionId, parse_step_value
from bot.slack.listeners.actions.incident import clicked_incident, clicked_message
from bot.slack.listeners.common import guarded
from bot.slack.text import escape, user

Click = Callable[[dict[str, Any], AsyncRespond], Awaitable[None]]


def _value(body: dict[str, Any]) -> str:
    """A button's value, or the option chosen in a menu."""
    action = (body.get("actions") or [{}])[0]
    return str(action.get("value") or (action.get("selected_option") or {}).get("value") or "")


def _damaged() -> UsageError:
    return UsageError("This button is from an old or damaged message.", usage="/incident playbook <id>")


def _step(body: dict[str, Any]) -> tuple[int, str]:
    try:
        return parse_step_value(_value(body))
    except ValueError:
        raise _damaged() from None


def _message(body: dict[str, Any]) -> tuple[str, str] | None:
    """(channel, ts) of the message the click came from, when Slack says."""
    container = body.get("container") or {}
    channel = str((body.get("channel") or {}).get("id") or container.get("channel_id") or "")
    ts = str((body.get("message") or {}).get("ts") or container.get("message_ts") or "")
    return (channel, ts) if channel and ts else None


async def _ephemeral(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def _show_offer(
    deps: Deps,
    *,
    run_id: int,
    step_id: str,
    actor: str,
    offer: flows.OpsOffer,
    channel_id: str | None,
    respond: AsyncRespond,
) -> None:
    """A step's Restart / Roll back button shows exactly what `/restart` / `/rollback` show: the ops
    flow checks the permission (refusals audited) and builds the plan, the ops confirmation carries
    the Confirm button that `listeners/actions/ops.py` handles. What was shown is the step's outcome."""
    action = offer.action
    try:
        plan = await prepare_ops(
            deps,
            action=OpsAction(action.value),
            service=offer.service,
            user_id=actor,
            incident_id=offer.incident_id,
            channel_id=channel_id,
        )
    except BotError as exc:  # a refusal: recorded like any outcome, then answered to the clicker
        result = flows.ActionResult(action, False, str(exc))
        await flows.record_action(deps, run_id=run_id, step_id=step_id, actor=actor, result=result)
        raise
    if plan.ready:
        text, blocks = render.confirmation_text(plan), render.confirmation_blocks(plan)
        shown = f"confirmation shown to {actor}: {plan.describe()}"
    else:
        text, blocks = render.no_target_text(plan), render.no_target_blocks(plan)
        shown = f"{action.value} of {offer.service} not offered: {plan.problem}"
    await respond(text=text, blocks=blocks, response_type="ephemeral", replace_original=False)
    result = flows.ActionResult(action, True, shown)
    await flows.record_action(deps, run_id=run_id, step_id=step_id, actor=actor, result=result)


async def _change_step(deps: Deps, to: StepStatus, body: dict[str, Any], respond: AsyncRespond) -> None:
    """Done, Skip or Reopen; a click that lost the race is told who was first."""
    run_id, step_id = _step(body)
    change = await flows.change_step(
        deps, run_id=run_id, step_id=step_id, to=to, actor=body["user"]["id"], message=_message(body)
    )
    if not change.recorded and change.state == StepStatus.PENDING:
        await _ephemeral(respond, f"Step *{escape(change.step_title)}* is open already.")
    elif not change.recorded:
        await _ephemeral(
            respond, f"Step *{escape(change.step_title)}* was already {change.state.value} by {user(change.by)}."
        )


async def _run(deps: Deps, body: dict[str, Any], respond: AsyncRespond) -> None:
    run_id, step_id = _step(body)
    actor = body["user"]["id"]
    result = await flows.run_action(deps, run_id=run_id, step_id=step_id, actor=actor, message=_message(body))
    if result.offer is not None:
        channel_id = (body.get("channel") or {}).get("id")
        await _show_offer(
            deps,
            run_id=run_id,
            step_id=step_id,
            actor=actor,
            offer=result.offer,
            channel_id=channel_id,
            respond=respond,
        )
    elif not result.available:
        await _ephemeral(respond, f"⚠️ `{result.action.value}` is {escape(result.output)}")


async def _pick(deps: Deps, body: dict[str, Any], respond: AsyncRespond) -> None:
    incident, _, playbook_id = _value(body).partition(":")
    if not (incident.isascii() and incident.isdigit() and len(incident) < 10) or not playbook_id:
        raise _damaged()
    # The picker lives in the incident's channel: a click in another incident's channel is refused.
    found = await clicked_incident(deps, body, "playbook pick", number=int(incident))
    channel, ts, _ = clicked_message(body)
    started = await flows.pick(
        deps,
        incident_id=int(incident),
        playbook_id=playbook_id,
        actor=body["user"]["id"],
        # Only a message in the incident's channel becomes its checklist (the run edits it in place).
        picker_ts=ts if ts and channel == found.channel_id else None,
    )
    if started.already_running:
        await _ephemeral(respond, f"📋 The {escape(started.progress.title)} playbook is running already.")


def _on_click(app: AsyncApp, action_id: str | re.Pattern[str], click: Click) -> None:
    """Ack at once; the work runs after, and its errors are answered to the person who clicked."""

    @app.action(action_id)
    async def listener(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()
        await guarded(respond, lambda: click(body, respond))


def register(app: AsyncApp, deps: Deps) -> None:
    _on_click(app, PlaybookActionId.DONE, functools.partial(_change_step, deps, StepStatus.DONE))
    _on_click(app, PlaybookActionId.SKIP, functools.partial(_change_step, deps, StepStatus.SKIPPED))
    _on_click(app, PlaybookActionId.REOPEN, functools.partial(_change_step, deps, StepStatus.PENDING))
    _on_click(app, PlaybookActionId.RUN, functools.partial(_run, deps))
    _on_click(app, re.compile("^" + re.escape(PlaybookActionId.PICK_PREFIX)), functools.partial(_pick, deps))
