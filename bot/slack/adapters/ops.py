"""The ops ports in Slack: who is in a user group, and one progress message edited in place.

Also the Block Kit for /status, the restart/rollback confirmation, progress and report. Text from
outside (health bodies, commit messages, platform errors, a deploy webhook's `meta.note`) is escaped before
it is shown; the progress and report sections are `verbatim`, so a platform's words link no bare URL and
mention nobody.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.clock import format_duration
from bot.exceptions import ChatError
from bot.health.checker import HealthResult
from bot.health.classify import HealthState
from bot.ops.models import Action
from bot.ops.plans import PHASES, Plan, Report, Step
from bot.ops.status import StatusReport
from bot.platforms.base import Deployment, DeployStatus
from bot.slack import blocks
from bot.slack.api import CHANNEL_GONE, GroupHandles, UserHandles, call, data
from bot.slack.text import chunks, clip, escape, ts

log = logging.getLogger(__name__)

Block = dict[str, Any]

CONFIRM = "ops_confirm"
CANCEL = "ops_cancel"

_PHASE_LABEL = {
    "calling": "Platform call",
    "queued": "Queued",
    "building": "Building",
    "deploying": "Deploying",
    "health": "Health check",
}
_DURATION_LABEL = {"call": "platform call", "deploy": "deploy", "health": "health check", "total": "total"}


# --- ports ---------------------------------------------------------------------------------------


class SlackDirectory:
    """User groups and handles, asked of Slack at the moment of a privileged action.

    Group membership is read fresh every time (someone taken off on-call loses the right at once);
    the handle → ID maps of people and groups change rarely and are kept for HANDLE_TTL seconds.
    """

    HANDLE_TTL = 300.0

    def __init__(self, client: AsyncWebClient, *, handles: UserHandles | None = None) -> None:
        self.client = client
        self.handles = handles or UserHandles(client, ttl=self.HANDLE_TTL)
        self.groups = GroupHandles(client, ttl=self.HANDLE_TTL)

    async def group_members(self, *, group_id: str) -> list[str]:
        if group_id.startswith("@"):
            group_id = await self.groups.group_id(group_id)
        response = await call("read the user group", self.client.usergroups_users_list(usergroup=group_id))
        return [str(u) for u in data(response).get("users") or []]

    async def lookup_user(self, *, handle: str) -> str | None:
        return await self.handles.lookup(handle)


_MESSAGE_GONE = frozenset({"message_not_found", "cant_update_message"})


class SlackOpsProgress:
    """One message per action, posted in the channel (or the person's DM) and then edited in place."""

    def __init__(self, client: AsyncWebClient, *, channel_id: str, user_id: str) -> None:
        self.client = client
        self.channel_id = channel_id
        self.user_id = user_id
        self.channel: str | None = None
        self.ts: str | None = None
        self.failed = False

    async def progress(self, *, plan: Plan, step: Step) -> None:
        await self._show(progress_text(plan, step), progress_blocks(plan, step, confirmed_by=self.user_id))

    async def finished(self, *, plan: Plan, report: Report) -> None:
        text, message_blocks = report_text(report), report_blocks(report)
        try:
            await self._show(text, message_blocks)
        except ChatError:
            if self.ts is None:
                raise
            # Slack failed the last edit (a 5xx, a timeout): the message would stay at "⏳ deploying" for good,
            # and nobody would learn how it ended. Post the report anew (twice, if that edit went through after all).
            self.channel = self.ts = None
            await self._show(text, message_blocks)

    async def _show(self, text: str, message_blocks: list[Block]) -> None:
        if self.failed:
            return
        gone: str | None = None
        if self.ts is not None and self.channel is not None:
            try:
                await call(
                    "update the progress message",
                    self.client.chat_update(channel=self.channel, ts=self.ts, text=text, blocks=message_blocks),
                    expected=_MESSAGE_GONE | CHANNEL_GONE,
                )
                return
            except ChatError as exc:
                if exc.code not in _MESSAGE_GONE | CHANNEL_GONE:
                    raise
                # Someone deleted the message, archived the channel or removed the bot while the action
                # ran: post it again (elsewhere when the channel is gone), or how it ended is never seen.
                log.info("the progress message in %s is gone (%s): posting it again", self.channel, exc.code)
                gone = self.channel if exc.code in CHANNEL_GONE else None
                self.channel = self.ts = None
        for target in (self.channel_id, self.user_id):
            if not target or target == gone:
                continue
            try:
                response = await call(
                    "post the progress message",
                    self.client.chat_postMessage(channel=target, text=text, blocks=message_blocks, unfurl_links=False),
                )
            except ChatError as exc:
                log.info("cannot post ops progress in %s (%s); trying the next place", target, exc.code)
                continue
            body = data(response)
            self.channel = str(body.get("channel") or target)
            self.ts = str(body["ts"])
            return
        self.failed = True
        raise ChatError("could not post the progress message anywhere", step="post the progress message")


# --- rendering: /status --------------------------------------------------------------------------


def _latency(result: HealthResult) -> str:
    return f"{result.latency_ms} ms" if result.latency_ms is not None and result.http_status is not None else ""


def health_line(result: HealthResult) -> str:
    parts = [f"{result.state.emoji} *{escape(result.service)}* {result.state.value}"]
    if latency := _latency(result):
        parts.append(latency)
    if result.failing:
        named = ", ".join(
            escape(d.name) + (f" ({escape(clip(d.detail, 80))})" if d.detail else "") for d in result.failing[:3]
        )
        parts.append(f"failing: {named}")
    elif result.state is not HealthState.HEALTHY and result.reason:
        parts.append(escape(result.reason))
    if result.state is not HealthState.HEALTHY and result.detail and not result.failing:
        parts.append(f"_{escape(clip(result.detail, 120))}_")
    return " · ".join(parts)


def _counts(results: Sequence[HealthResult]) -> str:
    counts: dict[HealthState, int] = {}
    for r in results:
        counts[r.state] = counts.get(r.state, 0) + 1
    return " · ".join(f"{n} {state.value}" for state, n in sorted(counts.items(), key=lambda kv: kv[0].rank))


def _sections(lines: list[str]) -> list[Block]:
    return [blocks.mrkdwn(text) for text in chunks(lines)]


def _deployment_line(deployment: Deployment, *, live: bool) -> str:
    label = f" {escape(deployment.label)}" if deployment.label else ""
    when = f" · {ts(deployment.created_at)}" if deployment.created_at else ""
    tag = " · *live*" if live else ""
    doubt = f" · ⚠️ {escape(deployment.doubt)}" if deployment.doubt else ""
    return f"{deployment.status.emoji} `{escape(deployment.id)}`{label} · {deployment.status.value}{when}{tag}{doubt}"


def status_text(report: StatusReport) -> str:
    return f"{report.overall.emoji} Service health: {_counts(report.results)}"


def status_blocks(report: StatusReport) -> list[Block]:
    took = f"{report.elapsed.total_seconds():.1f} s"
    head = f"{report.overall.emoji} *Service health* · {_counts(report.results)} · checked in {took}"
    if report.service is None:
        ordered = sorted(report.results, key=lambda r: (-r.state.rank, r.service))
        out = [blocks.mrkdwn(head), *_sections([health_line(r) for r in ordered])]
        return out[:50]
    result = report.results[0]
    out = [blocks.mrkdwn(head), blocks.mrkdwn(health_line(result))]
    details = []
    if result.url:
        status = f"HTTP {result.http_status}" if result.http_status is not None else "no answer"
        # The reason often starts with the same status ("HTTP 200, unrecognised status 'x'"): say it once.
        reason = result.reason.removeprefix(status).lstrip(" ,·:") if result.reason else ""
        details.append(f"`{escape(result.url)}` → {status}" + (f" · {escape(reason)}" if reason else ""))
    for dep in result.dependencies[:20]:
        note = f" · {escape(clip(dep.detail, 150))}" if dep.detail else ""
        details.append(f"{dep.state.emoji} {escape(dep.name)} {dep.state.value}{note}")
    if details:
        out.extend(_sections(details))
    if report.platform_name:
        if report.deploy_error:
            out.append(blocks.mrkdwn(f"⚠️ Deployments on {report.platform_name}: {escape(report.deploy_error)}"))
        elif report.deployments:
            live = report.current.id if report.current else None
            lines = [f"*Recent deployments on {report.platform_name}*"] + [
                _deployment_line(d, live=d.id == live) for d in report.deployments
            ]
            out.extend(_sections(lines))
        else:
            out.append(blocks.mrkdwn(f"No deployments listed on {report.platform_name}."))
    return out[:50]


# --- rendering: confirmation, progress, report ---------------------------------------------------


def _describe(deployment: Deployment | None) -> str:
    if deployment is None:
        return "_nothing live_"
    label = f" {escape(deployment.label)}" if deployment.label else ""
    when = f" · {ts(deployment.created_at)}" if deployment.created_at else ""
    return f"`{escape(deployment.id)}`{label} ({deployment.status.value}{when})"


def _rollback_target(plan: Plan) -> str:
    """Which deployment a rollback goes back to and when it was live: what the person confirming checks."""
    target = plan.target
    if target is None:
        return _describe(target)
    since = f"from {ts(target.created_at)}" if target.created_at else "from a time not known"
    name = escape(plan.platform_name)
    until = f"until {ts(target.live_until)}" if target.live_until else f"until when, {name} does not say"
    doubt = f"\n⚠️ not known to have run healthily: {escape(target.doubt)}" if target.doubt else ""
    how = f"\n⚠️ {escape(target.caveat)}" if target.caveat else ""
    live = "Never live in production" if target.never_live else f"Live {since} {until}"
    return f"{_describe(target)}\n{live}{doubt}{how}"


def _title(plan: Plan) -> str:
    verb = "Restart" if plan.action is Action.RESTART else "Roll back"
    return f"{verb} *{escape(plan.service)}* on {escape(plan.platform_name)}"


def confirmation_text(plan: Plan) -> str:
    return escape(f"{plan.describe()}? Confirm or cancel.")


def _restart_effect(plan: Plan) -> str:
    """Said as it is: with nothing live a restart deploys code that is not running now."""
    if plan.redeploys is None:
        return "the live deployment is restarted in place; no new code"
    warning = ""
    if plan.redeploys.status in (DeployStatus.FAILED, DeployStatus.CANCELLED):
        warning = f"\n⚠️ it ended {plan.redeploys.status.value}: the same code may fail again"
    return (
        f"nothing is live, so {escape(plan.platform_name)} builds and deploys the newest deployment again: "
        f"{_describe(plan.redeploys)}{warning}\n"
        f"To go back to code that ran fine instead: `/rollback {escape(plan.service)}`"
    )


def confirmation_blocks(plan: Plan) -> list[Block]:
    fields = [
        f"*Service*\n{escape(plan.service)}",
        f"*Platform*\n{escape(plan.platform_name)}",
        f"*Live now*\n{_describe(plan.current)}",
    ]
    if plan.action is Action.ROLLBACK:
        fields.append(f"*Roll back to*\n{_rollback_target(plan)}")
    else:
        fields.append(f"*What happens*\n{_restart_effect(plan)}")
    out: list[Block] = [
        blocks.mrkdwn(f"{_title(plan)}?"),
        {"type": "section", "fields": [{"type": "mrkdwn", "text": clip(f, 2000)} for f in fields]},
    ]
    if plan.action is Action.ROLLBACK and plan.candidates:
        others = ", ".join(f"`{escape(d.id)}`" for d in plan.candidates[:5])
        out.append(blocks.context(f"Other choices: {others} (`/rollback {escape(plan.service)} &lt;id&gt;`)"))
    value = plan.request_id  # the stored confirmation's id: nothing else is taken from the click
    out.append(
        {
            "type": "actions",
            "block_id": f"ops_{plan.request_id}",
            "elements": [
                blocks.button("Confirm", CONFIRM, value, "danger"),
                blocks.button("Cancel", CANCEL, value),
            ],
        }
    )
    return out


def plan_reply(plan: Plan) -> tuple[str, list[Block]]:
    """(text, blocks) answering /restart or /rollback: the confirmation, or why there is nothing to confirm."""
    if plan.ready:
        return confirmation_text(plan), confirmation_blocks(plan)
    return no_target_text(plan), no_target_blocks(plan)


def _cannot(plan: Plan) -> str:
    return "Cannot restart" if plan.action is Action.RESTART else "Cannot roll back"


def no_target_text(plan: Plan) -> str:
    return escape(f"{_cannot(plan)} {plan.service}: {plan.problem}.")


def no_target_blocks(plan: Plan) -> list[Block]:
    where = f"*{escape(plan.service)}* on {escape(plan.platform_name)}"
    lines = [f"⚠️ {_cannot(plan)} {where}: {escape(plan.problem)}."]
    lines.append(f"Live now: {_describe(plan.current)}")
    if plan.action is Action.RESTART or plan.blocked:
        # With something live (a paused Deployment) a rollback is no way out, nor is another deployment picked.
        if plan.action is Action.RESTART and plan.current is None:
            lines.append(f"To put an earlier deployment that ran fine live: `/rollback {escape(plan.service)}`")
    elif plan.candidates:
        lines.append("*Recent deployments* (pick one by ID):")
        lines.extend(_deployment_line(d, live=False) for d in plan.candidates)
        lines.append(f"Run `/rollback {escape(plan.service)} &lt;deployment-id&gt;` to choose one.")
    else:
        lines.append("There are no other deployments to choose from.")
    return _sections(lines)


def progress_text(plan: Plan, step: Step) -> str:
    return escape(f"{plan.describe()}: {_PHASE_LABEL.get(step.phase, step.phase)} ({format_duration(step.elapsed)})")


def progress_blocks(plan: Plan, step: Step, *, confirmed_by: str) -> list[Block]:
    index = PHASES.index(step.phase) if step.phase in PHASES else 0
    marks = []
    for position, phase in enumerate(PHASES):
        if position < index:
            marks.append(f"✅ {_PHASE_LABEL[phase]}")
        elif position == index:
            marks.append(f"⏳ *{_PHASE_LABEL[phase]}*")
        else:
            marks.append(f"▫️ {_PHASE_LABEL[phase]}")
    lines = [f"🔄 {_title(plan)} · {format_duration(step.elapsed)}", "  →  ".join(marks)]
    if plan.redeploys is not None:
        lines.append(f"Redeploying {_describe(plan.redeploys)}: nothing was live")
    if step.deployment is not None and step.deployment.id:
        lines.append(f"Deployment `{escape(step.deployment.id)}`")
    if step.note:  # the platform's words (a deploy webhook's own `meta.note`): verbatim, escaped
        lines.append(f"_{escape(clip(step.note, 300))}_")
    out = [blocks.mrkdwn("\n".join(lines), verbatim=True)]
    out.append(blocks.context(f"Requested by <@{plan.requested_by}>, confirmed by <@{confirmed_by}>"))
    return out


def verdict(report: Report) -> tuple[str, str]:
    """The report's icon and headline (`Report.headline`, the timeline's words too)."""
    if not report.succeeded:  # one that may still be under way is not a plain failure
        return ("⚠️" if report.outcome_unknown else "❌"), report.headline
    doubtful = report.still_unhealthy or report.health_unknown or report.health_unchecked
    return ("⚠️" if doubtful else "✅"), report.headline


def report_text(report: Report) -> str:
    _, verb = verdict(report)
    return escape(f"{report.plan.describe()}: {verb}; {report.message}")


def report_blocks(report: Report) -> list[Block]:
    plan = report.plan
    icon, verb = verdict(report)
    total = report.durations.get("total")
    took = f" in {format_duration(total)}" if total is not None else ""
    lines = [f"{icon} {_title(plan)}: *{escape(verb)}*{took}", escape(report.message)]
    if plan.redeploys is not None:
        lines.append(f"Redeployed {_describe(plan.redeploys)}: nothing was live")
    if report.deployment is not None and report.deployment.id:
        status = report.deploy_status.value if report.deploy_status else report.deployment.status.value
        lines.append(f"Deployment `{escape(report.deployment.id)}` · {status}")
    if report.health is not None:
        lines.append(f"Health: {health_line(report.health)}")
    if report.durations:
        parts = [f"{_DURATION_LABEL.get(k, k)} {_short(v)}" for k, v in report.durations.items()]
        lines.append("Durations: " + " · ".join(parts))
    who = f"Requested by <@{plan.requested_by}>" + (f", confirmed by <@{report.actor}>" if report.actor else "")
    return [blocks.mrkdwn("\n".join(lines), verbatim=True), blocks.context(who)]  # the message has a platform's words


def _short(delta: timedelta) -> str:
    seconds = delta.total_seconds()
    return f"{seconds:.1f}s" if seconds < 10 else format_duration(delta)
