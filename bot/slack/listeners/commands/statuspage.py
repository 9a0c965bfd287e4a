"""`/incident publish [minor|major|critical] <message>`: one public status page update;
`/incident publish edit <message>` corrects the last one, `/incident unpublish` withdraws the public incident."""

from __future__ import annotations

import re

from bot.exceptions import UsageError
from bot.incidents import grammar
from bot.slack.adapters.statuspage import corrected_what
from bot.slack.listeners.common import CommandContext
from bot.slack.text import escape
from bot.statuspage import corrections, flows
from bot.statuspage.models import Impact

_MARKUP = re.compile(r"<([^<>\n]*)>")
_LINK = re.compile(r"(?:https?|mailto|tel):", re.IGNORECASE)


def _mentioned(target: str, label: str) -> str:
    """How the person typed a mention: `@bob`, `#inc-42`, `@sre-team`, `@here`."""
    if target.startswith("#"):
        return "#" + (label or target[1:])
    if label:
        return label if label.startswith("@") else "@" + label
    return "@" + target[1:].removeprefix("subteam^")


def public_text(message: str) -> str:
    """The message as the public should read it. `/incident` is escaped, so Slack turns what was typed as
    `@bob` into `<@U0BOB|bob>` and a link into `<https://…|label>`: links become their plain address, and a
    person, group or channel is refused (the page would show Slack's IDs and internal names)."""
    mentions: list[str] = []

    def plain(match: re.Match[str]) -> str:
        target, _, label = match.group(1).partition("|")
        if target[:1] in ("@", "#", "!"):
            mentions.append(_mentioned(target, label))
            return match.group(0)
        if not _LINK.match(target):
            return match.group(0)  # not Slack's markup: a literal `<b>` the person typed
        address = target.split(":", 1)[1].removeprefix("//")
        if not label or label in (target, address):
            return address if target.lower().startswith(("mailto:", "tel:")) else label or target
        return f"{label} ({target})"

    text = _MARKUP.sub(plain, message)
    if mentions:
        raise UsageError(
            f"The public message names {', '.join(dict.fromkeys(mentions))}: the status page is public, and shows no "
            "people or channels from inside. Write it without them.",
            usage=flows.USAGE,
        )
    return text


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
    if cmd.edit:
        corrected = await corrections.edit_last(
            ctx.deps, incident_id=incident.id or 0, actor=ctx.user_id, message=public_text(cmd.message)
        )
        await ctx.ephemeral(_corrected_reply(corrected))
        return
    published = await flows.publish(
        ctx.deps,
        incident_id=incident.id or 0,
        actor=ctx.user_id,
        message=public_text(cmd.message),
        impact=Impact(cmd.impact) if cmd.impact else None,
    )
    await ctx.ephemeral(published_reply(published))


def _corrected_reply(corrected: corrections.Corrected) -> str:
    text = (
        f"✏️ Corrected the last status page update of {corrected.incident.ref} "
        f"({corrected_what(corrected.update, corrected.repeated)})."
        f"\n>{escape(corrected.update.message)}"
    )
    if corrected.problems:
        text += "\n⚠️ " + "; ".join(corrected.problems)
    return text


async def unpublish(ctx: CommandContext) -> None:
    incident = await ctx.incident()
    withdrawn = await corrections.withdraw(ctx.deps, incident_id=incident.id or 0, actor=ctx.user_id)
    text = (
        f"🗑️ Withdrew {withdrawn.incident.ref} from the status page: it is no longer on the page, in summary.json "
        "or in the feed (nor on Atlassian Statuspage, when it is set up)."
    )
    if withdrawn.problems:
        text += "\n⚠️ " + "; ".join(withdrawn.problems)
    await ctx.ephemeral(text)
