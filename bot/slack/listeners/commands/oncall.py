"""`/incident oncall`: who each escalation level pages now, and after the next hand-off."""

from __future__ import annotations

from bot.escalation import policy
from bot.escalation.flows import Escalator
from bot.slack import blocks
from bot.slack.adapters.escalation import mention
from bot.slack.listeners.common import CommandContext
from bot.slack.text import escape, ts


def on_call_blocks(escalator: Escalator) -> tuple[str, list[blocks.Block]]:
    config = escalator.config
    levels = escalator.on_call()
    rotation = config.oncall.rotation
    if rotation is not None:
        heading = (
            f"*On call* · {rotation.period} rotation of {len(rotation.users)}, hand-off "
            f"{escape(rotation.handoff)} ({escape(config.oncall.timezone)})"
        )
    else:
        heading = "*On call* · no rotation configured (oncall.rotation in bot.yml)"
    lines = [heading]
    text_lines = []
    for level in levels:
        spec = config.escalation.levels[level.level - 1]
        now = ", ".join(mention(t) for t in level.now) or "_nobody_"
        if "oncall" in spec.notify and not level.now:
            now = "_nobody: set oncall.rotation in bot.yml_"
        line = f"*{level.level}. {escape(level.name)}* · after {policy.short_duration(level.after)} · now {now}"
        if level.next_at is not None and level.next != level.now:
            following = ", ".join(mention(t) for t in level.next) or "_nobody_"
            line += f" · next {following} from {ts(level.next_at)}"
        lines.append(line)
        text_lines.append(f"{level.level}. {level.name}: {', '.join(level.now) or 'nobody'}")
    out = [blocks.mrkdwn("\n".join(lines)), blocks.context(" · ".join(policy.describe_all(config.escalation)))]
    return "On call now: " + "; ".join(text_lines), out


async def oncall(ctx: CommandContext) -> None:
    if ctx.deps.escalator is None:
        await ctx.ephemeral("Escalation is not set up on this bot: nobody is on call here.")
        return
    text, out = on_call_blocks(ctx.deps.escalator)
    await ctx.ephemeral(text, out)
