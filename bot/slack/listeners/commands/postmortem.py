"""`/incident postmortem` and `/incident stats [days]`, plugged into the /incident command."""

from __future__ import annotations

from bot.followups import flows as followups
from bot.incidents import grammar
from bot.postmortem import flows
from bot.slack.adapters.postmortem import stats_message
from bot.slack.listeners.common import CommandContext
from bot.slack.text import clip, escape, ts


async def postmortem(ctx: CommandContext) -> None:
    incident = await ctx.incident()
    assert incident.id is not None
    if isinstance(ctx.command, grammar.PostmortemCmd) and ctx.command.done:
        await flows.mark_finished(ctx.deps, incident_id=incident.id, actor=ctx.user_id)
        filed = ""
        if ctx.deps.issue_tracker is not None:
            filed = "\n" + filed_text(
                await followups.create_open_issues(ctx.deps, incident_id=incident.id, actor=ctx.user_id)
            )
        await ctx.ephemeral(f"✅ The {incident.ref} post-mortem is marked finished; no more reminders.{filed}")
        return
    published = await flows.publish(ctx.deps, incident_id=incident.id, actor=ctx.user_id, trigger="command")
    await ctx.ephemeral(published_text(published))


def published_text(published: flows.Published) -> str:
    """What happened to the draft, truly: shared, and whether the timeline has it."""
    where = f"in <#{published.channel_id}> as `{published.filename}`"
    if published.earlier is not None:
        return (
            f"📝 The post-mortem draft for {published.ref} was shared {where} at {ts(published.earlier)}, but not "
            "recorded then; it is recorded now. Run `/incident postmortem` again for a fresh draft."
        )
    if published.unrecorded:
        text = (
            f"📝 Post-mortem draft for {published.ref} shared {where}, but recording it on the timeline failed "
            f"({escape(published.unrecorded)}). Do not share it again: once the bot's database is back, "
            "`/incident postmortem` records this draft instead of sharing a second one."
        )
    else:
        text = f"📝 Post-mortem draft for {published.ref} shared {where} ({published.events} timeline events)."
    if published.maybe_earlier is not None:
        text += (
            f"\n⚠️ An earlier draft, shared at {ts(published.maybe_earlier)} but not recorded, may be in the channel"
            f" too: Slack could not be searched for it ({escape(published.unsearched)}). If there are two, this one"
            " is the current one."
        )
    return text


def filed_text(filed: followups.Filed) -> str:
    """What `/incident postmortem done` did with the open follow-ups."""
    if not (filed.created or filed.existing or filed.failed):
        return "No open follow-ups to file."
    lines = [
        f"🎫 {len(filed.created)} issue(s) created for open follow-ups"
        + (f", {len(filed.existing)} had one" if filed.existing else "")
        + ":"
    ]
    lines += [f"• <{item.issue_url}|{escape(clip(item.text, 80))}>" for item in filed.created]
    lines += [f"⚠️ {escape(clip(item.text, 80))}: {escape(error)}" for item, error in filed.failed]
    lines += [
        f"⚠️ {escape(clip(item.text, 80))} got <{item.issue_url}|an issue> while the tracker was answering; "
        f"the one this made, <{dup.url}|{escape(dup.name)}>, is a duplicate: please close it."
        for item, dup in filed.duplicates
    ]
    return "\n".join(lines)


async def stats(ctx: CommandContext) -> None:
    assert isinstance(ctx.command, grammar.Stats)
    result = await flows.stats(ctx.deps, days=ctx.command.days, person=ctx.user_id)
    text, blocks = stats_message(result)
    await ctx.ephemeral(text, blocks)
