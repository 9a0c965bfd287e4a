"""Forms opened from a click: open at once, fill after the checks.

Slack's trigger_id expires 3 s after the click, and the access check before a form may call Slack
(users.info, a private channel's members) or wait on it. So the form opens first as a placeholder
that shows nothing; only once the incident is re-read and `can_see` passes is it replaced with the
real form (views.update needs no trigger). A refusal replaces it with the same answer a missing
incident gets, said there only: it is raised for the listener's ephemeral reply only when the form
could not show it. A person who closes the placeholder before it is filled has walked away: Slack then
answers `not_found`, and nothing more is said.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient

from bot.exceptions import BotError, ChatError
from bot.slack.api import call
from bot.slack.text import clip, error_text

log = logging.getLogger(__name__)

View = dict[str, Any]


def placeholder(title: str) -> View:
    """A form with nothing in it yet and nothing to submit."""
    return {
        "type": "modal",
        "title": {"type": "plain_text", "text": clip(title, 24)},
        "close": {"type": "plain_text", "text": "Close"},
        "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": "⏳ Loading…"}}],
    }


def notice(title: str, exc: Exception) -> View:
    """What replaces the placeholder when the form cannot be shown."""
    text = f"⚠️ {error_text(exc)}" if isinstance(exc, BotError) else "⚠️ Something went wrong on our side; it is logged."
    view = placeholder(title)
    view["blocks"] = [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]
    return view


_CLOSED = frozenset({"not_found"})  # views.update on a view the person closed


async def open_then_fill(
    client: AsyncWebClient, *, trigger_id: str, step: str, title: str, build: Callable[[], Awaitable[View]]
) -> None:
    """Open a placeholder with the trigger now, then show what `build` (checks and reads) returns."""
    opened = await call(step, client.views_open(trigger_id=trigger_id, view=placeholder(title)))
    view_id = str((opened.get("view") or {}).get("id") or "")
    try:
        view = await build()
    except Exception as exc:
        # When the notice cannot replace the form, `exc` is raised for the listener, which logs it: once.
        await _fill(client, step=step, view_id=view_id, view=notice(title, exc), instead=exc)
        if not isinstance(exc, BotError):
            log.error("could not build the form of %s", step, exc_info=exc)
        return
    await _fill(client, step=step, view_id=view_id, view=view, instead=None)


async def _fill(client: AsyncWebClient, *, step: str, view_id: str, view: View, instead: Exception | None) -> None:
    """Replace the placeholder. Closed meanwhile: nothing to say. Any other failure is raised for the
    listener's ephemeral reply: the refusal (`instead`) when there was one, so it is said once, else Slack's."""
    try:
        await call(step, client.views_update(view_id=view_id, view=view), expected=_CLOSED)
    except ChatError as exc:
        if exc.code in _CLOSED:
            log.info("%s: the form was closed before it was filled", step)
            return
        raise (instead or exc) from None
