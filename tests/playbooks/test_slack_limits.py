"""The progress message of the longest playbook the loader accepts fits one Slack message, whatever its
templates expand to: posted and edited through the fake Slack, which refuses more than 50 blocks and a
section over 3000 characters as Slack does; and, too long in total for Slack, it is shown compact."""

from __future__ import annotations

from pathlib import Path

from bot.playbooks import runs, steps
from bot.playbooks.schema import MAX_STEPS
from bot.slack.adapters.playbooks import PlaybookActionId
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack, validate_blocks
from tests.fakes.slack_api.blocks import blocks_text_length
from tests.harness import BotHarness, running_bot
from tests.playbooks.conftest import buttons, click, progress_message, text_of

TITLE = "{{ incident.title }}" * 7  # 140 characters of template: 7 times the incident's title
LONG = '"{% for i in range(40) %}{{ incident.title }}\\n{% endfor %}"'  # double-quoted YAML: a newline each


def _longest_playbook(directory: Path) -> None:
    lines = [
        "id: huge",
        "title: Huge",
        "description: '{{ incident.title }}'",
        "restricted: {note: '{{ incident.title }}'}",
        "match: {keywords: [cachebomb]}",
        "steps:",
    ]
    for index in range(MAX_STEPS):
        instructions = LONG if index == 1 else "do it"
        required = "false" if index == 1 else "true"
        lines.append(
            f"  - {{id: s{index}, title: '{TITLE}', instructions: {instructions}, action: status, "
            f"required: {required}}}"
        )
    directory.mkdir()
    (directory / "huge.yml").write_text("\n".join(lines) + "\n")


async def _fill(bot: BotHarness) -> None:
    """Every step with an action's long output, all but the first two skipped with a long reason."""
    async with bot.deps.db.session() as session:
        run = await runs.current_run(session, incident_id=1)
        assert run is not None and run.id is not None
        for index in range(MAX_STEPS):
            await steps.record_action_result(
                session, run_id=run.id, step_id=f"s{index}", action="status", actor="U0BOB", ok=False,
                output="&" * 5000, now=bot.deps.clock.now(),
            )  # fmt: skip
        for index in range(2, MAX_STEPS):
            await steps.skip_step(
                session, run_id=run.id, step_id=f"s{index}", actor="U0ALICE", now=bot.deps.clock.now(),
                reason="&" * 500,
            )  # fmt: skip


async def test_the_longest_playbook_posts_and_updates_at_its_fullest(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """100 steps whose titles and instructions expand a 290-character incident title full of `&` (escaped
    five-fold), every step with an action's output, 98 skipped with a long reason: the message at its
    largest (all required steps finished, the optional next step shown in full, the reopen menu) is
    accepted. Before, each title filled a section of its own and Slack refused the 100-block message.
    The blocks and sections are what this test is about: the total length is let through here."""
    fake_slack.max_blocks_text = 10**6
    _longest_playbook(tmp_path / "playbooks")
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, playbooks_dir=tmp_path / "playbooks"
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        incident = await bot.declare("P1 cachebomb " + "&" * 277)
        assert len(incident.title) == 287
        posted = progress_message(bot, incident)
        assert validate_blocks(posted.blocks) == [] and len(posted.blocks or []) <= 50
        await _fill(bot)
        await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
        message = progress_message(bot, incident)
        assert message.edited and message.ts == posted.ts
        assert validate_blocks(message.blocks) == [] and len(message.blocks or []) <= 50
        assert len(buttons(message)[PlaybookActionId.REOPEN]["options"]) == MAX_STEPS - 1
        text = text_of(message)
        assert "All required steps are finished" in text and "*Next: 2. cachebomb &amp;" in text
        contexts = [e["text"] for b in message.blocks or [] if b["type"] == "context" for e in b["elements"]]
        assert any("read the rest in the playbook file" in c for c in contexts)
        assert "⏭ 100. cachebomb &amp;" in text and "— skipped by <@U0ALICE>: &amp;" in text


async def test_the_longest_playbook_at_its_fullest_is_shown_compact(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """The same message, some 100,000 characters, is refused by Slack as too long in total: the compact one
    is accepted, posted and edited, with every part at its largest (the next step's instructions and
    output cut, the ten latest closed steps in the reopen menu). Before, no progress message was shown."""
    _longest_playbook(tmp_path / "playbooks")
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, playbooks_dir=tmp_path / "playbooks"
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        incident = await bot.declare("P1 cachebomb " + "&" * 277)
        posted = progress_message(bot, incident)
        await _fill(bot)
        await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
        message = progress_message(bot, incident)
        assert message.edited and message.ts == posted.ts
        assert validate_blocks(message.blocks) == [] and blocks_text_length(message.blocks) <= 9_500
        options = buttons(message)[PlaybookActionId.REOPEN]["options"]
        assert [o["value"] for o in options] == [f"1:s{i}" for i in range(99, 89, -1)]
        text = text_of(message)
        assert "✅ 1 done · ⏭ 98 skipped _(collapsed)_" in text and "⏭ 100." not in text
        assert "All required steps are finished" in text and "*Next: 2. cachebomb &amp;" in text
        assert "read them in full in the playbook file" in text and PlaybookActionId.DONE in buttons(message)
