"""`/incident playbook <id>`: start (or switch to) a playbook, or show the one running."""

from __future__ import annotations

from bot.incidents import grammar
from bot.playbooks import flows
from bot.slack.adapters.playbooks import public_warning
from bot.slack.listeners.common import CommandContext
from bot.slack.text import escape


async def playbook_command(ctx: CommandContext) -> None:
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
    if started.progress.public_warning and not started.already_running:
        text += f"\n{public_warning(incident.ref)}"  # the words the progress message carries too
    await ctx.ephemeral(text)
