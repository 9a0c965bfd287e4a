"""Playbook buttons (Done, Skip, Run action, the picker) and `/incident playbook <id>`."""

from __future__ import annotations

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


def register(app: AsyncApp, deps: Deps) -> None:
    register_subcommand(deps, "playbook", _playbook_command)

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
