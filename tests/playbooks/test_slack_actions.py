"""Playbook actions through the real app and the fake Slack: status, restart, page and notify steps, and
an invalid playbook stopping start-up."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import pytest

from bot import wiring
from bot.check import run_check
from bot.deps import Deps
from bot.exceptions import ConfigError
from bot.playbooks import flows
from bot.playbooks.models import StepStatus
from bot.playbooks.schema import Action
from bot.slack.adapters.playbooks import PlaybookActionId
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness
from tests.playbooks.conftest import (
    buttons,
    click,
    current_states,
    progress_message,
    step_events,
    text_of,
)

# --- actions -------------------------------------------------------------------------------------


async def test_status_action_checks_the_incident_service(bot: BotHarness) -> None:
    await bot.declare("P1 service:api API down")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.RUN, user="U0BOB")
    state = (await current_states(bot, 1))["check-health"]
    assert state.action_ok is False and state.action_by == "U0BOB"
    assert state.state == StepStatus.PENDING  # a check does not tick the step
    assert state.action_output.startswith("api: failing") and "db" in state.action_output
    [event] = await step_events(bot, 1)
    assert event.actor == "U0BOB" and event.data["status"] == "status failed"
    assert event.data["output"] == state.action_output
    text = text_of(progress_message(bot, incident))
    assert "⚠️ Last status by <@U0BOB>" in text and "api: failing" in text


async def test_status_action_on_a_healthy_service(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.RUN, user="U0BOB")
    state = (await current_states(bot, 1))["check-health"]
    assert state.action_ok is True and state.action_output.startswith("gateway: healthy")


async def test_restart_step_shows_the_restart_confirmation_with_its_permissions(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    assert buttons(progress_message(bot, incident))[PlaybookActionId.RUN]["text"]["text"] == "Restart"
    await click(bot, incident, PlaybookActionId.RUN, user="U0BOB")  # not in permissions.restart
    assert "you may not restart gateway" in bot.last_reply()
    refused = (await current_states(bot, 1))["restart"]
    assert refused.action_ok is False and "you may not restart gateway" in (refused.action_output or "")

    await click(bot, incident, PlaybookActionId.RUN, user="U0LEAD")
    confirmation = bot.fake.responses[-1]
    assert confirmation["text"] == "Restart gateway on deploy webhook (live: dep-2)? Confirm or cancel."
    assert confirmation["response_type"] == "ephemeral"
    ops_buttons = [e["action_id"] for b in confirmation["blocks"] if b["type"] == "actions" for e in b["elements"]]
    assert ops_buttons == ["ops_confirm", "ops_cancel"]  # handled by the ops listener, as for /restart
    offered = (await current_states(bot, 1))["restart"]
    assert offered.action_ok is True and offered.action_by == "U0LEAD"
    assert offered.action_output == "confirmation shown to U0LEAD: Restart gateway on deploy webhook (live: dep-2)"
    assert offered.state == StepStatus.PENDING  # done once someone says so, after the restart


async def test_restart_step_of_an_incident_without_a_service_answers_the_clicker(bot: BotHarness) -> None:
    await bot.declare("P1 Site down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    replies = len(bot.replies())
    await click(bot, incident, PlaybookActionId.RUN, user="U0LEAD")
    assert bot.replies()[replies:] == [  # escaped: Slack shows <service>
        "⚠️ `restart` is not available: the incident names no service: type `/restart &lt;service&gt;` (api, gateway)"
    ]
    state = (await current_states(bot, 1))["restart"]
    assert state.action_ok is False and state.action_by == "U0LEAD" and "names no service" in state.action_output


async def test_missing_domains_answer_not_available(start: Callable[..., Awaitable[BotHarness]]) -> None:
    def without(deps: Deps) -> None:
        deps.ops = None
        deps.escalator = None

    bot = await start(without)
    await bot.declare("P1 Leaked credentials")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")  # contain
    await click(bot, incident, PlaybookActionId.RUN, user="U0ALICE")  # escalate: page
    assert "`page` is not available: escalation is not set up" in bot.last_reply()
    [event] = [e for e in await step_events(bot, 1) if e.data["step_id"] == "escalate"]
    assert event.data["ok"] is False and event.data["output"].startswith("not available")

    await bot.declare("P1 service:gateway Gateway down")
    second = await bot.incident(2)
    for _ in range(3):
        await click(bot, second, PlaybookActionId.DONE, user="U0BOB")
    await click(bot, second, PlaybookActionId.RUN, user="U0BOB")  # step 4: restart
    assert "`restart` is not available: restart is not set up in this bot; type `/restart gateway`" in bot.last_reply()
    assert not [r for r in bot.fake.responses if "Confirm or cancel" in (r.get("text") or "")]
    restart = (await current_states(bot, 2))["restart"]
    assert restart.action_ok is False and (restart.action_output or "").startswith("not available")


async def test_a_restart_step_is_returned_as_an_offer_and_recorded_once_shown(bot: BotHarness) -> None:
    """The playbook domain calls neither ops nor Slack: it says what to offer; the listener shows and records it."""
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    answered = len(bot.fake.responses)
    result = await flows.run_action(bot.deps, run_id=1, step_id="restart", actor="U0LEAD")
    assert result.offer == flows.OpsOffer(action=Action.RESTART, service="gateway", incident_id=1)
    assert len(bot.fake.responses) == answered  # nothing shown by the domain
    assert (await current_states(bot, 1))["restart"].action_by is None  # nor recorded before it is shown

    await flows.record_action(
        bot.deps, run_id=1, step_id="restart", actor="U0LEAD", result=flows.ActionResult(Action.RESTART, True, "shown")
    )
    recorded = (await current_states(bot, 1))["restart"]
    assert recorded.action_ok is True and recorded.action_by == "U0LEAD" and recorded.action_output == "shown"


async def test_the_page_action_is_delegated_to_the_escalator(start: Callable[..., Awaitable[BotHarness]]) -> None:
    pages: list[tuple[int, str]] = []

    class Escalation:
        async def escalate_now(self, incident_id: int, *, actor: str) -> str:
            pages.append((incident_id, actor))
            return "paged level 2 (Team lead)"

    def fakes(deps: Deps) -> None:
        deps.escalator = cast(Any, Escalation())  # stands in for the real escalator: records the call

    bot = await start(fakes)
    await bot.declare("P1 Database disk full")  # database playbook, step 7 pages
    incident = await bot.incident(1)
    for _ in range(6):
        await click(bot, incident, PlaybookActionId.SKIP, user="U0ALICE")
    await click(bot, incident, PlaybookActionId.RUN, user="U0ALICE")
    assert pages == [(1, "U0ALICE")]
    assert (await current_states(bot, 1))["escalate"].action_output == "paged level 2 (Team lead)"


async def test_notify_posts_to_the_step_channel(bot: BotHarness) -> None:
    bot.fake.add_channel("security", channel_id="C0SECURITY", members=["U0ALICE"])
    await bot.declare("P1 Leaked credentials <!channel>")
    incident = await bot.incident(1)
    for _ in range(5):
        await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
    message = progress_message(bot, incident)
    assert buttons(message)[PlaybookActionId.RUN]["text"]["text"] == "Send notification"
    await click(bot, incident, PlaybookActionId.RUN, user="U0ALICE")
    [posted] = bot.fake.messages("C0SECURITY")
    assert "Security incident INC-1 (P1) is being handled in a private channel" in posted.text
    assert "<!channel>" not in posted.text
    state = (await current_states(bot, 1))["notify"]
    assert state.action_ok is True and state.action_output.startswith("posted to #security")


# --- validation at start-up ----------------------------------------------------------------------


async def test_an_invalid_playbook_stops_start_up_and_check_names_it(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "database.yml").write_text(
        "id: database\ntitle: Database\nsteps:\n"
        "  - {id: look, title: Look, instructions: look}\n"
        "  - {id: kill-idle, title: Kill, instructions: kill, action: restrat}\n"
    )
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, playbooks_dir=playbooks)
    expected = (
        f"{playbooks}/database.yml: line 5: steps[1] (kill-idle): action: unknown action 'restrat' "
        "(expected one of status, restart, rollback, page, notify)"
    )
    with pytest.raises(ConfigError) as err:
        wiring.build(settings)
    assert str(err.value) == expected
    assert await run_check(settings) == 1
    assert f"error: {expected}" in capsys.readouterr().out
