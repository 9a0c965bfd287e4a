"""`/incident`: where the slash command lands. Parse, ack, run one flow, reply."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp, AsyncBoltContext
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import Zone, format_duration, utc, zone_of
from bot.deps import Deps
from bot.exceptions import UsageError
from bot.followups import flows as followups
from bot.incidents import flows, grammar, impact, service
from bot.incidents.flows import Outcome
from bot.slack import blocks
from bot.slack.api import call
from bot.slack.listeners import replay
from bot.slack.listeners.commands import oncall, playbook, postmortem, statuspage
from bot.slack.listeners.common import (
    CommandContext,
    SubcommandHandler,
    command_text,
    form_playbooks,
    guarded,
    known,
    usage_reply,
)
from bot.slack.text import escape, ts
from bot.timeline import service as timeline

log = logging.getLogger(__name__)

TIMELINE_LIMIT = 60


def _problems(outcome: Outcome) -> str:
    if not outcome.problems:
        return ""
    return "\n⚠️ " + "; ".join(outcome.problems)


async def _declare(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Declare)
    outcome = await flows.declare(
        ctx.deps,
        title=cmd.title,
        declared_by=ctx.user_id,
        severity=cmd.severity,
        service_name=cmd.service,
        playbook_id=cmd.playbook,
        private=cmd.private,
        first=ctx.claim,
    )
    await _announce_declared(ctx.respond, outcome, typed_in=ctx.channel_id)


async def _announce_declared(respond: AsyncRespond, outcome: Outcome, *, typed_in: str) -> None:
    """The reply to `/incident declare`: where its channel is (a private one, or one the announcement in
    this very channel already names: to the declarer only), what failed."""
    incident = outcome.incident
    where = f"<#{incident.channel_id}>" if incident.channel_id else "(no channel yet)"
    if not incident.private and incident.announcement_ts and incident.announcement_channel == typed_in:
        await respond(
            text=f"🚨 {incident.ref} [{incident.severity}] {escape(incident.title)} declared: join {where}",
            response_type="ephemeral",
            replace_original=False,
        )
    elif incident.private:  # only the declarer hears of it; the channel's members see the rest
        await respond(
            text=f"🔒 {incident.ref} [{incident.severity}] {escape(incident.title)} declared as a private incident: "
            f"{where}",
            response_type="ephemeral",
            replace_original=False,
        )
    else:
        await respond(
            text=f"🚨 {incident.ref} [{incident.severity}] {escape(incident.title)} declared by "
            f"<@{incident.declared_by}>: join {where}",
            response_type="in_channel",
            replace_original=False,
        )
    await offer_retry(respond, outcome, replace=False)


async def offer_retry(respond: AsyncRespond, outcome: Outcome, *, replace: bool) -> None:
    """What the setup could not do, with *Retry setup*, to whoever declared or retried (nothing if it all went well)."""
    if not outcome.problems:
        return
    incident = outcome.incident
    await respond(
        text=f"{incident.ref} is saved, but {'; '.join(outcome.problems)}.",
        blocks=[
            blocks.mrkdwn(
                f"⚠️ *{incident.ref} is saved*, but {escape('; '.join(outcome.problems))}.\n"
                "Press *Retry setup* once Slack is reachable again; finished steps are skipped."
            ),
            blocks.retry_setup(incident.id),
        ],
        response_type="ephemeral",
        replace_original=replace,
    )


async def _update(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Update)
    incident = await ctx.incident()
    outcome = await flows.update_status(
        ctx.deps, incident_id=incident.id or 0, status=cmd.status, message=cmd.message, actor=ctx.user_id
    )
    await ctx.ephemeral(f"{incident.ref} is now *{cmd.status.value}*.{_problems(outcome)}")


async def _note(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Text)
    incident = await ctx.incident()
    await flows.add_note(ctx.deps, incident_id=incident.id or 0, text=cmd.text, actor=ctx.user_id)
    await ctx.ephemeral(f"📝 Noted on the {incident.ref} timeline.")


async def _action(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.ActionItemCmd)
    incident = await ctx.incident()
    await flows.add_action_item(
        ctx.deps, incident_id=incident.id or 0, text=cmd.text, owner=cmd.owner, actor=ctx.user_id
    )
    await followups.refresh_quietly(ctx.deps, incident_id=incident.id or 0)
    async with ctx.deps.db.session() as session:
        items = await service.action_items(session, incident_id=incident.id or 0)
    head = f"📋 Follow-up added to {incident.ref}. All follow-ups:"
    listing = "\n".join(blocks.action_item_line(item) for item in items)
    tracker = ctx.deps.issue_tracker is not None
    await ctx.ephemeral(f"{head}\n{listing}", [blocks.mrkdwn(head), *blocks.followup_list(items, tracker=tracker)])


async def _sev(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Sev)
    incident = await ctx.incident()
    outcome = await flows.change_severity(
        ctx.deps, incident_id=incident.id or 0, severity=cmd.severity, actor=ctx.user_id
    )
    await ctx.ephemeral(f"{incident.ref} is now {cmd.severity}.{_problems(outcome)}")


async def _role(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.RoleCmd)
    incident = await ctx.incident()
    outcome = await flows.assign_role(
        ctx.deps, incident_id=incident.id or 0, role=cmd.role, user=cmd.user, actor=ctx.user_id
    )
    await ctx.ephemeral(f"<@{cmd.user}> is the {cmd.role.value} of {incident.ref}.{_problems(outcome)}")


def ack_reply(outcome: Outcome) -> str:
    """The same answer for the command, the summary button and the page button."""
    incident = outcome.incident
    if outcome.changed:
        return f"✋ You acknowledged {incident.ref}.{_problems(outcome)}"
    return f"{incident.ref} was acknowledged already by <@{incident.acknowledged_by}>; your ack is on the timeline."


async def _ack(ctx: CommandContext) -> None:
    incident = await ctx.incident()
    outcome = await flows.acknowledge(ctx.deps, incident_id=incident.id or 0, actor=ctx.user_id)
    await ctx.ephemeral(ack_reply(outcome))


async def _resolve(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Text)
    incident = await ctx.incident()
    outcome = await flows.resolve(ctx.deps, incident_id=incident.id or 0, summary=cmd.text, actor=ctx.user_id)
    await ctx.ephemeral(f"✅ {incident.ref} resolved.{_problems(outcome)}")


async def _started(ctx: CommandContext) -> None:
    cmd = ctx.command
    assert isinstance(cmd, grammar.Started)
    incident = await ctx.incident()
    # A time typed without a zone is in the typist's, as Slack has it (read by the access check, cached).
    account = await ctx.deps.incident_access.account(person=ctx.user_id)
    zone = zone_of(account.tz, account.tz_offset)
    now = ctx.deps.clock.now()
    latest = utc(incident.resolved_at) if incident.resolved_at else None
    at = cmd.resolve(now, latest=latest, zone=zone.tz)
    incident = await impact.correct(ctx.deps, incident_id=incident.id or 0, at=at, actor=ctx.user_id)
    await ctx.ephemeral(
        f"⏱️ {incident.ref}: impact started at {ts(at)}; time to detect {format_duration(incident.time_to_detect)}."
        + read_as(cmd, zone=zone, at=at, now=now, latest=latest, asked=account.answered)
    )


def read_as(
    cmd: grammar.Started, *, zone: Zone, at: datetime, now: datetime, latest: datetime | None, asked: bool
) -> str:
    """How a time typed without a date or zone was read: in which zone, and which day (`latest`: the
    resolve, when the incident is resolved, before which a time of day is taken). `asked`: False when
    Slack could not be asked for the typist's zone, which is not the same as Slack having none. A time
    a few minutes ahead, read as now, is said so, whatever its form."""
    ahead = cmd.ahead(now, latest=latest, zone=zone.tz)
    if cmd.clock is None and cmd.local is None:
        return "" if ahead is None or cmd.at is None else f"\n`{cmd.at:%Y-%m-%d %H:%M} UTC`: {_ahead_text(ahead)}"
    where = _read_in(cmd, zone=zone, asked=asked)
    shown = zone.tz if cmd.zoned else UTC
    if cmd.clock is None:
        typed_at = cmd.local if ahead is not None and cmd.local is not None else at.astimezone(shown)
        read = f"\n`{typed_at:%Y-%m-%d %H:%M}` was read in {where}"
        return f"{read}: {_ahead_text(ahead)}" if ahead is not None else f"{read}."
    typed = cmd.clock.strftime("%H:%M:%S" if cmd.clock.second else "%H:%M")
    if ahead is not None:
        return f"\n`{typed}` was read in {where}: {_ahead_text(ahead)}"
    until = min(now, latest) if latest is not None else now
    same_day = at.astimezone(shown).date() == until.astimezone(shown).date()
    if until == now:
        day = "today" if same_day else "yesterday"
        return f"\n`{typed}` was read in {where}, as {day}'s: the last {typed} before now."
    day = "the day it was resolved" if same_day else "the day before it was resolved"
    return f"\n`{typed}` was read in {where}, on {day}: the last {typed} before the resolve."


def _read_in(cmd: grammar.Started, *, zone: Zone, asked: bool) -> str:
    """The zone a time typed without one was read in, and why that one."""
    if not cmd.zoned:
        return "UTC"
    if zone.known:
        return f"{zone.label} time (your Slack time zone; add `UTC` for UTC)"
    if not asked:
        return (
            "UTC (Slack could not be asked for your time zone just now; add `UTC` to say so, or give the"
            " offset, as in `2026-12-05T14:05+01:00`)"
        )
    return "UTC (Slack gave no time zone for you)"


def _ahead_text(ahead: timedelta) -> str:
    """A time still to come by at most `started_time.AHEAD`, which `Started.resolve` reads as now."""
    return (
        f"it is {format_duration(ahead)} ahead of the bot's clock (a watch a little fast?), so the impact"
        " start is now. If it began earlier, type that time or `-15m`."
    )


async def _timeline(ctx: CommandContext) -> None:
    incident = await ctx.incident()
    async with ctx.deps.db.session() as session:
        recent = await timeline.events(session, incident_id=incident.id or 0, limit=TIMELINE_LIMIT, newest_first=True)
        total = await timeline.count(session, incident_id=incident.id or 0)
    recent.reverse()
    await ctx.ephemeral(f"{incident.ref} timeline", blocks.timeline_blocks(incident, recent, total=total))


async def _list(ctx: CommandContext) -> None:
    async with ctx.deps.db.session() as session:
        incidents = await service.list_open(session)
    incidents = await ctx.deps.incident_access.visible(person=ctx.user_id, incidents=incidents)
    count = f"{len(incidents)} open incident{'' if len(incidents) == 1 else 's'}"
    await ctx.ephemeral(count, blocks.incident_list(incidents, now=ctx.deps.clock.now()))


async def _help(ctx: CommandContext) -> None:
    # Escaped: Slack reads `<title>` as a link and `<@user>` as a mention, even in a code block.
    await ctx.ephemeral("```" + escape(grammar.help_text()) + "```")


HANDLERS: dict[str, SubcommandHandler] = {
    "declare": _declare,
    "update": _update,
    "note": _note,
    "action": _action,
    "sev": _sev,
    "role": _role,
    "ack": _ack,
    "resolve": _resolve,
    "started": _started,
    "timeline": _timeline,
    "list": _list,
    "help": _help,
    # The other domains' subcommands, answered by their own listener modules.
    "oncall": oncall.oncall,
    "postmortem": postmortem.postmortem,
    "stats": postmortem.stats,
    "playbook": playbook.playbook_command,
    "publish": statuspage.publish,
    "unpublish": statuspage.unpublish,
}


def register(app: AsyncApp, deps: Deps) -> None:
    @app.command("/incident")
    async def incident_command(
        ack: AsyncAck, command: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient, context: AsyncBoltContext
    ) -> None:
        try:
            cmd: grammar.Command | UsageError = grammar.parse(command_text(command), known=known(deps))
        except UsageError as exc:
            cmd = exc
        carried: replay.CarriedClaim | None = context.get(replay.CARRIED)
        declares = isinstance(cmd, grammar.Declare) and not cmd.interactive
        if carried is not None and not declares and not await carried.alone(deps):
            await ack()  # a replay of a request answered already
            return
        if isinstance(cmd, UsageError):
            await ack(**usage_reply(cmd))
            return
        if isinstance(cmd, grammar.Declare) and cmd.interactive:
            await ack()
            await guarded(respond, lambda: _open_declare_modal(deps, client, command, private=cmd.private))
            return
        await ack()
        handler = HANDLERS[cmd.name]  # every subcommand the grammar parses has one (tests/incidents/test_lifecycle.py)
        ctx = CommandContext(
            deps=deps,
            command=cmd,
            user_id=command["user_id"],
            channel_id=command.get("channel_id", ""),
            respond=respond,
            client=client,
            trigger_id=command.get("trigger_id"),
            claim=carried.write if carried is not None and declares else None,
        )
        await guarded(respond, lambda: _unless_replayed(handler, ctx))


async def _unless_replayed(handler: SubcommandHandler, ctx: CommandContext) -> None:
    """A declaration whose claim found it answered already was rolled back whole: nothing more to say."""
    try:
        await handler(ctx)
    except replay.Replayed:
        log.info("a replayed /incident declare was dropped")


async def _open_declare_modal(
    deps: Deps, client: AsyncWebClient, command: dict[str, Any], *, private: bool = False
) -> None:
    view = blocks.declare_modal(
        services=sorted(deps.settings.config.services),
        playbooks=form_playbooks(deps),
        channel_id=command.get("channel_id", ""),
        private=private,
    )
    await call("open the declare form", client.views_open(trigger_id=command["trigger_id"], view=view))
