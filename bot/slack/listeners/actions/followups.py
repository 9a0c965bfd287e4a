"""*Create issue* next to a follow-up: files it in the team's tracker and says so in the channel."""

from __future__ import annotations

from typing import Any

from slack_bolt.async_app import AsyncAck, AsyncApp
from slack_bolt.context.respond.async_respond import AsyncRespond

from bot.deps import Deps
from bot.exceptions import UsageError
from bot.followups import flows
from bot.slack.blocks import ActionId
from bot.slack.listeners.common import guarded
from bot.slack.text import clip, escape


def _item_id(body: dict[str, Any]) -> int:
    value = str((body.get("actions") or [{}])[0].get("value", ""))
    if not (value.isascii() and value.isdigit() and len(value) < 10):  # "²" is a digit to isdigit, not to int
        raise UsageError("This button carries no follow-up; it may come from an old message.", usage="/incident help")
    return int(value)


def register(app: AsyncApp, deps: Deps) -> None:
    @app.action(ActionId.CREATE_ISSUE)
    async def create_issue(ack: AsyncAck, body: dict[str, Any], respond: AsyncRespond) -> None:
        await ack()

        async def work() -> None:
            actor = body["user"]["id"]
            filing = await flows.file_issue(deps, item_id=_item_id(body), actor=actor)
            item = filing.item
            what = escape(clip(item.text, 200))
            if not filing.created:
                text = f"This follow-up already has an issue: <{item.issue_url}|open it>."
                if filing.duplicate is not None:
                    dup = filing.duplicate
                    text = (
                        f"This follow-up got <{item.issue_url}|an issue> while the tracker was answering this click; "
                        f"the issue this click made, <{dup.url}|{escape(dup.name)}>, is a duplicate: please close it."
                    )
                await respond(
                    text=text,
                    response_type="ephemeral",
                    replace_original=False,
                )
                return
            # Said in the incident's channel; clicked anywhere else (a reply in #general), only to the clicker.
            here = (body.get("channel") or {}).get("id")
            await respond(
                text=f"🎫 <@{actor}> created <{item.issue_url}|an issue> for the follow-up: {what}",
                response_type="in_channel" if here and here == filing.channel_id else "ephemeral",
                replace_original=False,
            )

        await guarded(respond, work)
