"""The playbook chat port with the Slack Web API, and its Block Kit: the progress message
(checklist, next step, buttons) and the picker.

Playbook text is operator-written but may contain the incident title (user text) through its
variables, so all of it is escaped; code fences survive being split across sections.

The progress message must fit one Slack message (50 blocks, 3000 characters a section) whatever the
templates expand to: the loader caps a playbook at `MAX_STEPS` steps, each step's line here is at most
`LINE_LIMIT` characters (so a section holds at least three), and the next step's instructions take at
most `INSTRUCTION_SECTIONS` sections. That is 4 + 34 + 1 + 1 + (1 + 4 + 1 + 1) + 1 = 48 blocks at most.

Slack also refuses blocks too long in total (`msg_blocks_too_long`, at no documented threshold; reports
put it between 11,000 and 13,300 characters of text). Then the message is drawn compact instead
(`compact_blocks`): the steps closed collapse to their counts, the next step and the three after it stay
(its instructions cut to `_COMPACT_INSTRUCTIONS`), the rest is a count with where to read them all, and
the reopen menu offers the ten latest closed steps. Its text is bounded by construction to about 9,000
characters: head 1,100, window 4 x 900, notes 400, next step 2,900, reopen menu 800.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from slack_sdk.web.async_client import AsyncWebClient
from slack_sdk.web.async_slack_response import AsyncSlackResponse

from bot.exceptions import ChatError
from bot.incidents.models import Incident
from bot.playbooks.checklist import NextStep, Progress, StepProgress, compact_view
from bot.playbooks.models import StepStatus
from bot.playbooks.schema import MAX_STEPS, Playbook
from bot.slack import blocks
from bot.slack.api import call, data
from bot.slack.text import MAX_SECTION, chunks, clip, escape, ts, user

Block = blocks.Block
log = logging.getLogger(__name__)

MAX_BLOCKS = 50  # Slack's limit for a message
LINE_LIMIT = 900  # a checklist line; three fit a section
INSTRUCTION_SECTIONS = 4
_TITLE_LIMIT = 300  # escaped characters of a step's title (a template may hold the incident title)
_REASON_LIMIT = 300
_ACTOR_LIMIT = 40  # a system actor (an alert source) is shown as text
# head 4, checklist, divider, "all finished", next step (title, instructions, last output, buttons), reopen menu
WORST_CASE_BLOCKS = 4 + -(-MAX_STEPS // 3) + 1 + 1 + (1 + INSTRUCTION_SECTIONS + 1 + 1) + 1
assert WORST_CASE_BLOCKS <= MAX_BLOCKS, "MAX_STEPS no longer fits one progress message"
# What Slack answers to blocks too long in total: chat.postMessage's spec names msg_blocks_too_long;
# chat.update's lists no such code, only invalid_blocks, so that is taken as the same refusal.
TOO_LONG = frozenset({"msg_blocks_too_long", "invalid_blocks"})
_COMPACT_NOTE = 300  # the reason, description and restricted note in the compact head
_COMPACT_INSTRUCTIONS = 1_500
_COMPACT_OUTPUT = 500


class PlaybookActionId:
    DONE = "playbook_step_done"
    SKIP = "playbook_step_skip"
    RUN = "playbook_step_run"
    REOPEN = "playbook_step_reopen"  # a menu of the done and skipped steps
    PICK_PREFIX = "playbook_pick:"  # + playbook id: one button per playbook, each action_id unique


def step_value(run_id: int, step_id: str) -> str:
    return f"{run_id}:{step_id}"


def parse_step_value(value: str) -> tuple[int, str]:
    run, _, step = value.partition(":")
    if not (run.isascii() and run.isdigit() and len(run) < 10) or not step:
        raise ValueError(value)
    return int(run), step


def pick_value(incident_id: int, playbook_id: str) -> str:
    return f"{incident_id}:{playbook_id}"


def split_sections(text: str) -> list[str]:
    """Section-sized pieces on line boundaries; a ``` block cut in two is closed and reopened."""
    fixed: list[str] = []
    carry = False
    # Room for the fences added below (4 characters each side) and some spare.
    for chunk in chunks(text.splitlines(), limit=MAX_SECTION - 18):
        piece = "```\n" + chunk if carry else chunk
        carry = piece.count("```") % 2 == 1
        fixed.append(piece + "\n```" if carry else piece)
    return fixed or [""]


def escaped_within(text: str, limit: int) -> str:
    """`text` escaped and cut to `limit` characters, never in the middle of an `&amp;`."""
    out: list[str] = []
    size = 0
    for char in text:
        piece = escape(char)
        if size + len(piece) > limit - 1:
            return "".join(out) + "…"
        out.append(piece)
        size += len(piece)
    return "".join(out)


def _step_line(step: StepProgress, *, is_next: bool) -> str:
    marker = "👉" if is_next else step.emoji
    line = f"{marker} {step.number}. {escaped_within(step.title, _TITLE_LIMIT)}"
    if not step.required:
        line += " _(optional)_"
    by = user(step.by[:_ACTOR_LIMIT] if step.by else step.by)
    if step.state == StepStatus.DONE:
        line += f" — {by}"
    elif step.state == StepStatus.SKIPPED:
        line += f" — skipped by {by}"
        if step.reason:
            line += f": {escaped_within(step.reason, _REASON_LIMIT)}"
    if step.action_ok is not None and step.action:
        line += f" · {step.action.value} {'✅' if step.action_ok else '⚠️'}"
    return clip(line, LINE_LIMIT)  # by construction it is shorter; a guard for the block budget


def progress_text(progress: Progress) -> str:
    """The notification/fallback text."""
    return f"Playbook {progress.title}: {progress.done}/{progress.total} done, {progress.skipped} skipped"


def progress_blocks(progress: Progress) -> list[Block]:
    out = _progress_head(progress)
    next_id = progress.next.id if progress.next else None
    lines = [_step_line(s, is_next=s.id == next_id) for s in progress.steps]
    out.extend(blocks.mrkdwn(piece) for piece in split_sections("\n".join(lines)))
    closed = [s for s in progress.steps if s.state != StepStatus.PENDING]
    return out + _tail(progress, closed=closed, compact=False)


def compact_blocks(progress: Progress, *, dashboard: str | None = None) -> list[Block]:
    """The progress message when Slack refuses the whole of it as too long (see the module's docstring)."""
    view = compact_view(progress)
    out = _progress_head(progress, limit=_COMPACT_NOTE)
    lines = [_step_line(s, is_next=progress.next is not None and s.id == progress.next.id) for s in view.window]
    if view.done or view.skipped:
        lines.insert(0, f"✅ {view.done} done · ⏭ {view.skipped} skipped _(collapsed)_")
    if view.later:
        lines.append(f"⏳ {view.later} more step{'s' if view.later != 1 else ''} to come")
    out.extend(blocks.mrkdwn(piece) for piece in split_sections("\n".join(lines)))
    out.append(blocks.context(_where_to_read(progress, dashboard)))
    return out + _tail(progress, closed=view.recent, compact=True)


def _where_to_read(progress: Progress, dashboard: str | None) -> str:
    ref = f"INC-{progress.incident_id}"
    head = "The whole checklist is too long for one Slack message, so it is shown in short."
    if dashboard:
        return head + f" Every step: <{dashboard}/incidents/{ref}|{ref} on the dashboard>."
    return head + f" Every step: the playbook `{progress.playbook_id}`; who did what: `/incident timeline`."


def _tail(progress: Progress, *, closed: list[StepProgress], compact: bool) -> list[Block]:
    """After the checklist: why it is over, or the next step with its buttons, and the reopen menu."""
    out: list[Block] = [{"type": "divider"}]
    if not progress.current:
        out.append(blocks.context("This playbook was replaced by another one."))
        return out
    if progress.closed:
        out.append(blocks.context(f"INC-{progress.incident_id} is resolved: the checklist is closed."))
        return out
    if progress.finished:
        out.append(
            blocks.mrkdwn(
                f"🎉 *All required steps are finished* ({progress.done} done, {progress.skipped} skipped)."
                + (" Optional steps are still open below." if progress.next else "")
            )
        )
    if progress.next is not None:
        out.extend(_next_step_blocks(progress, progress.next, compact=compact))
    reopen = _reopen_menu(progress, closed)
    if reopen is not None:
        out.append({"type": "actions", "block_id": f"playbook_reopen_{progress.run_id}", "elements": [reopen]})
    return out


def _reopen_menu(progress: Progress, closed: list[StepProgress]) -> dict[str, Any] | None:
    """A menu of the steps done or skipped, to open one again after a misclick (at most MAX_STEPS options)."""
    if not closed:
        return None
    options = [
        {
            "text": {"type": "plain_text", "text": clip(f"{s.emoji} {s.number}. {s.title}", 75), "emoji": True},
            "value": step_value(progress.run_id, s.id),
        }
        for s in closed
    ]
    return {
        "type": "static_select",
        "action_id": PlaybookActionId.REOPEN,
        "placeholder": {"type": "plain_text", "text": "↩️ Reopen a step", "emoji": True},
        "options": options,
    }


def public_warning(incident: str = "this incident") -> str:
    """A private playbook (security breach) on a public incident: the progress message and the switch's reply."""
    return (
        f"⚠️ *This playbook is for private incidents, but {incident} is public*: everyone can read this "
        "channel and it stays public (the bot cannot make a public channel private). Keep sensitive details "
        "out of it; declare a private incident for them (`/incident declare private P1 <title>`) and work there."
    )


def _progress_head(progress: Progress, *, limit: int | None = None) -> list[Block]:
    """The title, the counts, who started it, and what the playbook is about (each note within `limit`)."""

    def note(text: str) -> str:
        return escape(text) if limit is None else escaped_within(text, limit)

    out: list[Block] = [blocks.header(f"📋 Playbook: {progress.title}")]
    about = [f"{progress.done}/{progress.total} done · {progress.skipped} skipped"]
    about.append(f"started by {user(progress.started_by)} {ts(progress.started_at)}")
    if progress.reason:
        about.append(note(progress.reason))
    out.append(blocks.context(" · ".join(about)))
    if progress.description:
        out.append(blocks.context(note(progress.description)))
    notes = [public_warning()] if progress.public_warning else []
    if progress.restricted_note:
        notes.append(f"🔒 {note(progress.restricted_note)}")
    if notes:  # one block: the message must fit Slack's 50 whatever the playbook
        out.append(blocks.context("\n".join(notes)))
    return out


def _next_step_blocks(progress: Progress, step: NextStep, *, compact: bool = False) -> list[Block]:
    """The next step in full (`compact`: cut short): its instructions, its last action's output, its buttons."""
    name = escaped_within(step.title, _TITLE_LIMIT) if compact else escape(step.title)
    title = f"*Next: {step.number}. {name}*" + ("" if step.required else " _(optional)_")
    if step.action is not None and step.service:
        title += f"\n_{escape(step.action_label or '')} acts on `{escape(step.service)}`_"
    out: list[Block] = [blocks.mrkdwn(title)]
    out.extend(_short_instructions(step.instructions) if compact else _instructions(step.instructions))
    last = next(s for s in progress.steps if s.id == step.id)
    if last.action_ok is not None and last.action_output is not None:
        mark = "✅" if last.action_ok else "⚠️"
        what = last.action.value if last.action else "action"
        head = f"{mark} Last {what} by {user(last.action_by)} {ts(last.action_at)}"
        room = _COMPACT_OUTPUT if compact else MAX_SECTION - len(head) - 20
        output = clip(escape(last.action_output), room)
        out.append(blocks.mrkdwn(f"{head}\n```{output}```"))
    value = step_value(progress.run_id, step.id)
    buttons = [
        blocks.button("Done", PlaybookActionId.DONE, value, "primary"),
        blocks.button("Skip", PlaybookActionId.SKIP, value),
    ]
    if step.action is not None:
        buttons.append(blocks.button(step.action_label or step.action.value, PlaybookActionId.RUN, value))
    out.append({"type": "actions", "block_id": f"playbook_step_{progress.run_id}", "elements": buttons})
    return out


def _instructions(text: str) -> list[Block]:
    """The instructions in at most INSTRUCTION_SECTIONS sections; a template that expanded beyond says so."""
    pieces = split_sections(escape(text))
    if len(pieces) > INSTRUCTION_SECTIONS:
        cut = "_(The instructions are too long to show in full here: read the rest in the playbook file.)_"
        return [blocks.mrkdwn(piece) for piece in pieces[: INSTRUCTION_SECTIONS - 1]] + [blocks.context(cut)]
    return [blocks.mrkdwn(piece) for piece in pieces]


def _short_instructions(text: str) -> list[Block]:
    """The instructions' start, in one section; a ``` left open by the cut is closed."""
    piece = escaped_within(text, _COMPACT_INSTRUCTIONS)
    cut = piece != escape(text)
    if piece.count("```") % 2 == 1:
        piece += "\n```"
    out = [blocks.mrkdwn(piece or " ")]
    if cut:
        out.append(blocks.context("_(The instructions are cut short here: read them in full in the playbook file.)_"))
    return out


def picker_blocks(*, incident: Incident, playbooks: Sequence[Playbook], note: str = "") -> list[Block]:
    assert incident.id is not None
    why = escape(note) if note else "No playbook matched the title or service."
    out: list[Block] = [blocks.mrkdwn(f"📋 *Which playbook should {incident.ref} follow?* {why}")]
    listed = list(playbooks)[:100]
    for start in range(0, len(listed), 25):
        chunk = listed[start : start + 25]
        out.append(
            {
                "type": "actions",
                "block_id": f"playbook_pick_{start}",
                "elements": [
                    blocks.button(p.title, PlaybookActionId.PICK_PREFIX + p.id, pick_value(incident.id, p.id))
                    for p in chunk
                ],
            }
        )
    out.append(blocks.context("Or later: `/incident playbook <id>` (" + ", ".join(p.id for p in listed) + ")"))
    return out


class SlackPlaybookChat:
    def __init__(self, client: AsyncWebClient, *, dashboard: str | None = None) -> None:
        self.client = client
        self.dashboard = dashboard  # the web dashboard's URL when it is on: where the whole checklist is

    async def post_progress(self, *, channel_id: str, progress: Progress) -> str:
        response = await self._fitted(
            "post the playbook",
            self.client.chat_postMessage,
            progress,
            channel=channel_id,
            text=progress_text(progress),
            unfurl_links=False,
            unfurl_media=False,
        )
        return str(data(response)["ts"])

    async def update_progress(self, *, channel_id: str, ts: str, progress: Progress) -> str:
        text = progress_text(progress)  # what a 📌 on the progress message keeps of it
        await self._fitted(
            "update the playbook", self.client.chat_update, progress, channel=channel_id, ts=ts, text=text
        )
        return text

    async def _fitted(
        self, step: str, send: Callable[..., Awaitable[AsyncSlackResponse]], progress: Progress, **args: Any
    ) -> AsyncSlackResponse:
        """Send the whole progress; refused as too long, send it compact (a second refusal is an error)."""
        try:
            return await call(step, send(blocks=progress_blocks(progress), **args), expected=TOO_LONG)
        except ChatError as exc:
            if exc.code not in TOO_LONG:
                raise
            log.info(
                "the playbook of INC-%s is too long for one message (%s): shown compact", progress.incident_id, exc.code
            )
        return await call(step, send(blocks=compact_blocks(progress, dashboard=self.dashboard), **args))

    async def post_picker(self, *, incident: Incident, playbooks: list[Playbook], note: str) -> str:
        assert incident.channel_id
        response = await call(
            "offer the playbooks",
            self.client.chat_postMessage(
                channel=incident.channel_id,
                text=f"Which playbook should {incident.ref} follow?",
                blocks=picker_blocks(incident=incident, playbooks=playbooks, note=note),
            ),
        )
        return str(data(response)["ts"])

    async def notify(self, *, channel: str, text: str) -> str:
        await call(
            f"notify {channel}",
            self.client.chat_postMessage(channel=channel, text=escape(text), unfurl_links=False),
        )
        return channel  # plain text: it is stored on the timeline and shown escaped
