"""Block Kit for playbooks: the progress message (checklist, next step, buttons) and the picker.

Playbook text is operator-written but may contain the incident title (user text) through its
variables, so all of it is escaped; code fences survive being split across sections.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from bot.incidents.models import Incident
from bot.playbooks.models import StepStatus
from bot.playbooks.schema import Playbook
from bot.playbooks.service import Progress, StepProgress
from bot.slack.blocks import button, context, header, mrkdwn, ts
from bot.slack.text import MAX_SECTION, clip, escape, user

Block = dict[str, Any]


class PlaybookActionId:
    DONE = "playbook_step_done"
    SKIP = "playbook_step_skip"
    RUN = "playbook_step_run"
    PICK_PREFIX = "playbook_pick:"  # + playbook id: one button per playbook, each action_id unique


def step_value(run_id: int, step_id: str) -> str:
    return f"{run_id}:{step_id}"


def parse_step_value(value: str) -> tuple[int, str]:
    run, _, step = value.partition(":")
    if not run.isdigit() or not step:
        raise ValueError(value)
    return int(run), step


def pick_value(incident_id: int, playbook_id: str) -> str:
    return f"{incident_id}:{playbook_id}"


def split_sections(text: str, *, limit: int = MAX_SECTION - 10) -> list[str]:
    """Section-sized pieces on line boundaries; a ``` block cut in two is closed and reopened."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for line in text.splitlines():
        line = clip(line, limit - 8)
        if current and size + len(line) + 1 > limit - 8:
            pieces.append("\n".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line) + 1
    if current:
        pieces.append("\n".join(current))
    fixed: list[str] = []
    carry = False
    for piece in pieces:
        if carry:
            piece = "```\n" + piece
        carry = piece.count("```") % 2 == 1
        fixed.append(piece + "\n```" if carry else piece)
    return fixed or [""]


def _step_line(step: StepProgress, *, is_next: bool) -> str:
    marker = "👉" if is_next else step.emoji
    line = f"{marker} {step.number}. {escape(step.title)}"
    if not step.required:
        line += " _(optional)_"
    if step.state == StepStatus.DONE:
        line += f" — {user(step.by)}"
    elif step.state == StepStatus.SKIPPED:
        line += f" — skipped by {user(step.by)}"
        if step.reason:
            line += f": {escape(step.reason)}"
    if step.action_ok is not None and step.action:
        line += f" · {step.action.value} {'✅' if step.action_ok else '⚠️'}"
    return line


def progress_text(progress: Progress) -> str:
    """The notification/fallback text."""
    return f"Playbook {progress.title}: {progress.done}/{progress.total} done, {progress.skipped} skipped"


def progress_blocks(progress: Progress) -> list[Block]:
    blocks: list[Block] = [header(f"📋 Playbook: {progress.title}")]
    about = [f"{progress.done}/{progress.total} done · {progress.skipped} skipped"]
    about.append(f"started by {user(progress.started_by)} {ts(progress.started_at)}")
    if progress.reason:
        about.append(escape(progress.reason))
    blocks.append(context(" · ".join(about)))
    if progress.description:
        blocks.append(context(escape(progress.description)))
    if progress.restricted_note:
        blocks.append(context(f"🔒 {escape(progress.restricted_note)}"))
    next_id = progress.next.id if progress.next else None
    lines = [_step_line(s, is_next=s.id == next_id) for s in progress.steps]
    for piece in split_sections("\n".join(lines)):
        blocks.append(mrkdwn(piece))
    blocks.append({"type": "divider"})
    if not progress.current:
        blocks.append(context("This playbook was replaced by another one."))
        return blocks
    if progress.finished:
        blocks.append(
            mrkdwn(
                f"🎉 *All required steps are finished* ({progress.done} done, {progress.skipped} skipped)."
                + (" Optional steps are still open below." if progress.next else "")
            )
        )
    step = progress.next
    if step is None:
        return blocks
    title = f"*Next: {step.number}. {escape(step.title)}*" + ("" if step.required else " _(optional)_")
    if step.action is not None and step.service:
        title += f"\n_{escape(step.action_label or '')} acts on `{escape(step.service)}`_"
    blocks.append(mrkdwn(title))
    for piece in split_sections(escape(step.instructions)):
        blocks.append(mrkdwn(piece))
    last = next(s for s in progress.steps if s.id == step.id)
    if last.action_ok is not None and last.action_output is not None:
        mark = "✅" if last.action_ok else "⚠️"
        what = last.action.value if last.action else "action"
        head = f"{mark} Last {what} by {user(last.action_by)} {ts(last.action_at)}"
        output = clip(escape(last.action_output), MAX_SECTION - len(head) - 20)
        blocks.append(mrkdwn(f"{head}\n```{output}```"))
    value = step_value(progress.run_id, step.id)
    buttons = [button("Done", PlaybookActionId.DONE, value, "primary"), button("Skip", PlaybookActionId.SKIP, value)]
    if step.action is not None:
        buttons.append(button(step.action_label or step.action.value, PlaybookActionId.RUN, value))
    blocks.append({"type": "actions", "block_id": f"playbook_step_{progress.run_id}", "elements": buttons})
    return blocks


def picker_blocks(*, incident: Incident, playbooks: Sequence[Playbook], note: str = "") -> list[Block]:
    assert incident.id is not None
    intro = f"📋 *Which playbook should {incident.ref} follow?* No playbook matched the title or service."
    if note:
        intro = f"📋 *Which playbook should {incident.ref} follow?* {escape(note)}"
    blocks: list[Block] = [mrkdwn(intro)]
    listed = list(playbooks)[:100]
    for start in range(0, len(listed), 25):
        chunk = listed[start : start + 25]
        blocks.append(
            {
                "type": "actions",
                "block_id": f"playbook_pick_{start}",
                "elements": [
                    button(p.title, PlaybookActionId.PICK_PREFIX + p.id, pick_value(incident.id, p.id)) for p in chunk
                ],
            }
        )
    blocks.append(context("Or later: `/incident playbook <id>` (" + ", ".join(p.id for p in listed) + ")"))
    return blocks
