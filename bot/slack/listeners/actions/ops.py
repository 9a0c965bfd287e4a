"""The Confirm and Cancel buttons of a restart/rollback confirmation.

Confirm runs the plan (the flow re-checks the clicker's permission and that the live deployment
is still the one shown) and follows it in one message edited in place; Cancel records the no.
"""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond
from slack_sdk.web.async_client import AsyncWebClient

from bot.deps import Deps
from bot.ops import confirmations
from bot.ops.execution import execute
from bot.ops.plans import Plan, PlanRef, Report, Step
from bot.ops.service import AlreadyHandled
from bot.slack.adapters import ops as render
from bot.slack.adapters.ops import SlackOpsProgress
from bot.slack.listeners.common import guarded
from bot.slack.text import escape


class _Confirmed:
    """The Slack progress message, plus: the first step replaces the confirmation (its buttons go)."""

    def __init__(self, inner: SlackOpsProgress, respond: AsyncRespond, user_id: str) -> None:
        self.inner = inner
        self.respond = respond
        self.user_id = user_id
        self.started = False

    async def progress(self, *, plan: Plan, step: Step) -> None:
        if not self.started:
            self.started = True
            await self.respond(
                text=f"▶️ {escape(plan.describe())}: confirmed by <@{self.user_id}>, following it below.",
                response_type="ephemeral",
                replace_original=True,
            )
        await self.inner.progress(plan=plan, step=step)

    async def finished(self, *, plan: Plan, report: Report) -> None:
        await self.inner.finished(plan=plan, report=report)


async def _ref(deps: Deps, body: dict[str, Any], what: str) -> PlanRef:
    value = (body.get("actions") or [{}])[0].get("value", "")
    return await confirmations.pending(deps, value=str(value), user_id=body["user"]["id"], what=what)


def _channel(body: dict[str, Any]) -> str:
    return str((body.get("channel") or {}).get("id") or (body.get("container") or {}).get("channel_id") or "")


async def _already_handled(respond: AsyncRespond) -> None:
    await respond(text="This was already confirmed or cancelled.", response_type="ephemeral", replace_original=False)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(render.CONFIRM)
    async def confirm(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond, client: AsyncWebClient) -> None:
        await ack()

        async def work() -> None:
            ref = await _ref(deps, body, "confirm")
            user = body["user"]["id"]
            channel = _channel(body)
            inner = SlackOpsProgress(client, channel_id=channel, user_id=user)
            try:
                report = await execute(
                    deps, ref=ref, user_id=user, progress=_Confirmed(inner, respond, user), channel_id=channel or None
                )
            except AlreadyHandled:
                await _already_handled(respond)
                return
            if inner.ts is None:  # nowhere to post: at least tell the person who clicked
                await respond(
                    text=render.report_text(report),
                    blocks=render.report_blocks(report),
                    response_type="ephemeral",
                    replace_original=False,
                )

        await guarded(respond, work)

    @app.action(render.CANCEL)
    async def cancel(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            ref = await _ref(deps, body, "cancel")
            user = body["user"]["id"]
            try:
                await confirmations.cancel(deps, ref=ref, user_id=user, channel_id=_channel(body) or None)
            except AlreadyHandled:
                await _already_handled(respond)
                return
            await respond(
                text=f"🚫 {ref.action.verb} of {escape(ref.service)} cancelled by <@{user}>; nothing was changed.",
                response_type="ephemeral",
                replace_original=True,
            )

        await guarded(respond, work)
