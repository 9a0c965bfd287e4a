"""`/incident publish [minor|major|critical] <message>`: one public status page update."""

from __future__ import annotations

from bot.incidents import grammar
from bot.slack.listeners.common import CommandContext
from bot.slack.text import escape
from bot.statuspage import flows
from bot.statuspage.models import Impact


def published_reply(published: flows.Published) -> str:
    update = published.update
    text = (
        f"📣 Published to the status page for {published.incident.ref}: *{update.status}*, {update.impact} impact."
        f"\n>{escape(update.message)}"
    )
    if published.problems:
        text += "\n⚠️ " + "; ".join(published.problems)
    return text


async def publish(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Publish)
    incident = await ctx.incident()
    published = await flows.publish(
        ctx.deps,
        incident_id=incident.id or 0,
        actor=ctx.user_id,
        message=cmd.message,
        impact=Impact(cmd.impact) if cmd.impact else None,
    )
    await ctx.ephemeral(published_reply(published))
