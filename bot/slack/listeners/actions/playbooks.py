"""Playbook buttons (Done, Skip, Run action, the picker) and `/incident playbook <id>`."""

from __future__ import annotations

import functools
import re
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import Deps
from bot.exceptions import UsageError
from bot.incidents import grammar
from bot.playbooks import flows
from bot.playbooks.service import StepChange
from bot.slack.listeners.common import CommandContext, guarded, register_subcommand
from bot.slack.playbook_blocks import PlaybookActionId, parse_step_value
from bot.slack.text import escape, user


def _value(body: dict[str, Any]) -> str:
    return str((body.get("actions") or [{}])[0].get("value", ""))


def _step(body: dict[str, Any]) -> tuple[int, str]:
    try:
        return parse_step_value(_value(body))
    except ValueError:
        raise UsageError("This button is from an old or damaged message.", usage="/incident playbook <id>") from None


async def _ephemeral(respond: AsyncRespond, text: str) -> None:
    await respond(text=text, response_type="ephemeral", replace_original=False)


async def _lost_race(respond: AsyncRespond, change: StepChange) -> None:
    verb = "done" if change.state.value == "done" else change.state.value
    await _ephemeral(respond, f"Step *{escape(change.step_title)}* was already {verb} by {user(change.by)}.")


async def _playbook_command(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.PlaybookCmd)
    incident = await ctx.incident()
    assert incident.id is not None
    started = await flows.start_playbook(
        ctx.deps,
        incident_id=incident.id,
        playbook_id=cmd.playbook,
        actor=ctx.user_id,
        reason="asked for with /incident playbook",
    )
    title = escape(started.progress.title)
    where = f"<#{incident.channel_id}>" if incident.channel_id else "the incident channel"
    if started.already_running:
        text = f"📋 The {title} playbook is already running for {incident.ref}; its checklist is in {where}."
    elif started.switched_from:
        text = f"📋 {incident.ref} now follows the {title} playbook (was `{started.switched_from}`): see {where}."
    else:
        text = f"📋 {incident.ref} now follows the {title} playbook: see {where}."
    await ctx.ephemeral(text)


async def _ops_offer(
    deps: Deps, *, action: str, service: str, user_id: str, incident_id: int | None, context: dict[str, Any]
) -> str:
    """A step's Restart / Roll back button shows exactly what `/restart` / `/rollback` show: the ops
    flow checks the permission (refusals audited) and builds the plan, the ops confirmation carries
    the Confirm button that `listeners/actions/ops.py` handles."""
    from bot.ops import flows as ops_flows
    from bot.ops.models import Action as OpsAction
    from bot.slack.adapters import ops as render

    respond: AsyncRespond = context["respond"]
    plan = await ops_flows.prepare(
        deps,
        action=OpsAction(action),
        service=service,
        user_id=user_id,
        incident_id=incident_id,
        channel_id=context.get("channel_id"),
    )
    if not plan.ready:
        await respond(
            text=render.no_target_text(plan),
            blocks=render.no_target_blocks(plan),
            response_type="ephemeral",
            replace_original=False,
        )
        return f"{action} of {service} not offered: {plan.problem}"
    await respond(
        text=render.confirmation_text(plan),
        blocks=render.confirmation_blocks(plan),
        response_type="ephemeral",
        replace_original=False,
    )
    return f"confirmation shown to {user_id}: {plan.describe()}"


def register(app: AsyncApp, deps: Deps) -> None:
    register_subcommand(deps, "playbook", _playbook_command)
    if "ops" in deps.services:  # the ops domain is set up: offer its confirmation from a step
        deps.services.setdefault("ops_offer", functools.partial(_ops_offer, deps))

    @app.action(PlaybookActionId.DONE)
    async def done(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            run_id, step_id = _step(body)
            change = await flows.complete(deps, run_id=run_id, step_id=step_id, actor=body["user"]["id"])
            if not change.recorded:
                await _lost_race(respond, change)

        await guarded(respond, work)

    @app.action(PlaybookActionId.SKIP)
    async def skip(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            run_id, step_id = _step(body)
            change = await flows.skip(deps, run_id=run_id, step_id=step_id, actor=body["user"]["id"])
            if not change.recorded:
                await _lost_race(respond, change)

        await guarded(respond, work)

    @app.action(PlaybookActionId.RUN)
    async def run(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            run_id, step_id = _step(body)
            channel_id = (body.get("channel") or {}).get("id")
            result = await flows.run_action(
                deps,
                run_id=run_id,
                step_id=step_id,
                actor=body["user"]["id"],
                context={"respond": respond, "channel_id": channel_id, "trigger_id": body.get("trigger_id")},
            )
            if not result.available:
                await _ephemeral(respond, f"⚠️ `{result.action.value}` is {escape(result.output)}")

        await guarded(respond, work)

    @app.action(re.compile("^" + re.escape(PlaybookActionId.PICK_PREFIX)))
    async def pick(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            incident, _, playbook_id = _value(body).partition(":")
            if not incident.isdigit() or not playbook_id:
                raise UsageError("This button is from an old or damaged message.", usage="/incident playbook <id>")
            started = await flows.pick(
                deps,
                incident_id=int(incident),
                playbook_id=playbook_id,
                actor=body["user"]["id"],
                picker_ts=(body.get("message") or {}).get("ts") or (body.get("container") or {}).get("message_ts"),
            )
            if started.already_running:
                await _ephemeral(respond, f"📋 The {escape(started.progress.title)} playbook is running already.")

        await guarded(respond, work)
