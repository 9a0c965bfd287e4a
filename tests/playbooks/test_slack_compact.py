"""A playbook whose whole progress message Slack refuses as too long in total (`msg_blocks_too_long`; the
fake refuses over 11,000 characters of text) is shown compact: the closed steps as counts, the next step
and a few after it, the rest as a count with where to read them; its buttons keep working."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from bot.playbooks.models import StepStatus
from bot.slack.adapters.playbooks import PlaybookActionId, step_value
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.fakes.slack_api.blocks import blocks_text_length
from tests.harness import running_bot
from tests.playbooks.conftest import buttons, click, current_states, progress_message, text_of
from tests.web.conftest import dashboard_env

STEPS = 40
TITLE = "{{ incident.title }} " * 2  # two incident titles: about 400 characters a step


def _long_playbook(directory: Path) -> None:
    """40 steps whose titles expand the incident's title twice: some 16,000 characters in full."""
    lines = ["id: long", "title: Long", "match: {keywords: [longbook]}", "steps:"]
    lines.extend(
        f"  - {{id: s{index}, title: '{index}: {TITLE}', instructions: 'Do step {index}.'}}" for index in range(STEPS)
    )
    directory.mkdir()
    (directory / "long.yml").write_text("\n".join(lines) + "\n")


def _errors(fake: FakeSlack, method: str) -> list[Any]:
    return [c.response.get("error") for c in fake.calls if c.method == method]


async def test_a_playbook_too_long_for_one_message_is_shown_compact_and_its_done_button_works(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Before, Slack's refusal left the playbook running with no checklist in the channel."""
    _long_playbook(tmp_path / "playbooks")
    settings = make_settings(
        fake=fake_slack, database_url=database_url, tmp_path=tmp_path, playbooks_dir=tmp_path / "playbooks"
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        incident = await bot.declare("P1 longbook " + "checkout is down " * 11)
        assert _errors(fake_slack, "chat.postMessage").count("msg_blocks_too_long") == 1
        posted = progress_message(bot, incident)
        assert blocks_text_length(posted.blocks) <= fake_slack.max_blocks_text
        text = text_of(posted)
        assert "👉 1. 0: longbook" in text and "2. 1: longbook" in text and "4. 3: longbook" in text
        assert "5. 4: longbook" not in text and "⏳ 36 more steps to come" in text
        assert "too long for one Slack message" in text and "the playbook `long`" in text
        assert "*Next: 1. 0: longbook" in text and "Do step 0." in text
        assert buttons(posted)[PlaybookActionId.DONE]["value"].endswith(":s0")

        await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
        assert (await current_states(bot, incident.id or 0))["s0"].state == StepStatus.DONE
        assert _errors(fake_slack, "chat.update")[-2:] == ["invalid_blocks", None]
        message = progress_message(bot, incident)
        assert message.edited and message.ts == posted.ts
        text = text_of(message)
        assert "✅ 1 done · ⏭ 0 skipped _(collapsed)_" in text and "0: longbook" not in text
        assert "*Next: 2. 1: longbook" in text and "⏳ 35 more steps to come" in text
        assert buttons(message)[PlaybookActionId.DONE]["value"] == step_value(1, "s1")
        assert [o["value"] for o in buttons(message)[PlaybookActionId.REOPEN]["options"]] == [step_value(1, "s0")]

        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
        assert (await current_states(bot, incident.id or 0))["s1"].state == StepStatus.DONE
        text = text_of(progress_message(bot, incident))
        assert "✅ 2 done" in text and "*Next: 3. 2: longbook" in text and "⏳ 34 more steps to come" in text


async def test_the_compact_message_links_the_dashboard_when_it_is_on(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """And an edit refused with chat.postMessage's code (chat.update's spec does not list it) is redrawn too."""
    _long_playbook(tmp_path / "playbooks")
    fake_slack.update_blocks_too_long = "msg_blocks_too_long"
    settings = make_settings(
        fake=fake_slack,
        database_url=database_url,
        tmp_path=tmp_path,
        playbooks_dir=tmp_path / "playbooks",
        **dashboard_env(fake_slack),
    )
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        incident = await bot.declare("P1 longbook " + "checkout is down " * 11)
        link = f"<{settings.dashboard_url}/incidents/INC-1|INC-1 on the dashboard>"
        assert link in text_of(progress_message(bot, incident))
        await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
        assert _errors(fake_slack, "chat.update")[-2:] == ["msg_blocks_too_long", None]
        message = progress_message(bot, incident)
        assert "*Next: 2. 1: longbook" in text_of(message) and link in text_of(message)
