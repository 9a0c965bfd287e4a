"""`/incident postmortem` and `/incident stats [days]`, plugged into the /incident command."""

from __future__ import annotations

from slack_bolt.async_app import AsyncApp

from bot.deps import Deps
from bot.incidents import grammar
from bot.postmortem import flows
from bot.slack.adapters.postmortem import stats_message
from bot.slack.listeners.common import CommandContext, register_subcommand


async def _postmortem(ctx: CommandContext) -> None:
    incident = await ctx.incident()
    assert incident.id is not None
    if isinstance(ctx.command, grammar.PostmortemCmd) and ctx.command.done:
        await flows.mark_finished(ctx.deps, incident_id=incident.id, actor=ctx.user_id)
        await ctx.ephemeral(f"✅ The {incident.ref} post-mortem is marked finished; no more reminders.")
        return
    published = await flows.publish(ctx.deps, incident_id=incident.id, actor=ctx.user_id, trigger="command")
    await ctx.ephemeral(
        f"📝 Post-mortem draft for {published.ref} shared in <#{published.channel_id}> "
        f"as `{published.filename}` ({published.events} timeline events)."
    )


async def _stats(ctx: CommandContext) -> None:
    assert isinstance(ctx.command, grammar.Stats)
    result = await flows.stats(ctx.deps, days=ctx.command.days)
    text, blocks = stats_message(result)
    await ctx.ephemeral(text, blocks)


def register(app: AsyncApp, deps: Deps) -> None:
    register_subcommand(deps, "postmortem", _postmortem)
    register_subcommand(deps, "stats", _stats)
