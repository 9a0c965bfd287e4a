"""Reopening a step done or skipped by mistake, from the progress message's "Reopen a step" menu, through the
real app: who may, on which checklist, what the timeline, the message and the post-mortem say."""

from __future__ import annotations

from typing import Any

from bot.playbooks import runs
from bot.playbooks.models import StepStatus
from bot.postmortem import service as postmortem
from bot.slack.adapters.playbooks import PlaybookActionId
from tests.fakes.slack_api import Message
from tests.harness import BotHarness
from tests.playbooks.conftest import buttons, click, current_states, progress_message, step_events, text_of


def reopen_option(message: Message, step_id: str) -> dict[str, Any]:
    menu = buttons(message)[PlaybookActionId.REOPEN]
    assert menu["type"] == "static_select"
    [option] = [o for o in menu["options"] if o["value"].endswith(f":{step_id}")]
    return dict(option)


async def reopen(
    bot: BotHarness, message: Message, step_id: str, *, user: str, channel: str, option: dict[str, Any] | None = None
) -> None:
    """Choose the step in the menu of `message` (or an `option` kept from an older rendering of it)."""
    chosen = option or reopen_option(message, step_id)
    await bot.click(
        PlaybookActionId.REOPEN,
        chosen["value"],
        user=user,
        channel=channel,
        message_ts=message.ts,
        action_type="static_select",
        selected_option=chosen,
    )


def postmortem_rows(document: str, step: str) -> list[str]:
    return [line for line in document.splitlines() if f"| Service down | {step} |" in line]


async def test_a_step_done_by_mistake_is_reopened_and_done_again(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    await click(bot, incident, PlaybookActionId.SKIP, user="U0CAROL")
    menu = buttons(progress_message(bot, incident))[PlaybookActionId.REOPEN]
    assert [o["text"]["text"] for o in menu["options"]] == [
        "✅ 1. Check the health endpoints",
        "⏭ 2. Look at what changed",
    ]

    await reopen(bot, progress_message(bot, incident), "check-health", user="U0DAVE", channel=channel)

    state = (await current_states(bot, 1))["check-health"]
    assert (state.state, state.by, state.at) == (StepStatus.PENDING, None, None)
    message = progress_message(bot, incident)
    text = text_of(message)
    assert "👉 1. Check the health endpoints" in text and "*Next: 1. Check the health endpoints*" in text
    assert "<@U0BOB>" not in text and "⏭ 2. Look at what changed — skipped by <@U0CAROL>" in text
    assert buttons(message)[PlaybookActionId.DONE]["value"].endswith(":check-health")
    assert [o["value"].split(":")[1] for o in buttons(message)[PlaybookActionId.REOPEN]["options"]] == [
        "recent-deploys"
    ]
    reopened = (await step_events(bot, 1))[-1]
    assert (reopened.actor, reopened.data["status"], reopened.data["step_id"]) == ("U0DAVE", "reopened", "check-health")
    assert reopened.text == "Reopened step 1/6 of Service down: Check the health endpoints (was done by U0BOB)"

    async with bot.deps.db.session() as session:
        document = postmortem.render(await postmortem.build(session, incident_id=1))
    rows = postmortem_rows(document, "Check the health endpoints")
    assert [row.split(" | ")[4] for row in rows] == ["done, then reopened", "reopened"]  # never plain "done"

    await click(bot, incident, PlaybookActionId.DONE, user="U0CAROL")
    assert "✅ 1. Check the health endpoints — <@U0CAROL>" in text_of(progress_message(bot, incident))
    assert (await current_states(bot, 1))["check-health"].by == "U0CAROL"


async def test_reopening_a_step_of_a_finished_playbook_opens_the_playbook_again(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    for action in ("DONE", "DONE", "DONE", "SKIP", "SKIP", "DONE"):
        await click(bot, incident, getattr(PlaybookActionId, action), user="U0BOB")
    finished = progress_message(bot, incident)
    assert "All required steps are finished" in text_of(finished) and set(buttons(finished)) == {
        PlaybookActionId.REOPEN
    }

    await reopen(bot, finished, "verify", user="U0BOB", channel=channel)

    text = text_of(progress_message(bot, incident))
    assert "All required steps are finished" not in text and "*Next: 6. " in text
    async with bot.deps.db.session() as session:
        run = await runs.current_run(session, incident_id=1)
    assert run is not None and (run.finished_at, run.finished_reason, run.finished_by) == (None, None, None)
    assert (await step_events(bot, 1))[-1].text.endswith("(was done by U0BOB); the playbook is no longer finished")
    await click(bot, incident, PlaybookActionId.DONE, user="U0CAROL")
    completions = [e for e in await bot.timeline(1) if e.kind == "playbook" and e.data.get("status") == "completed"]
    assert [e.actor for e in completions] == ["U0BOB", "U0CAROL"]
    assert "All required steps are finished" in text_of(progress_message(bot, incident))


async def test_a_resolved_incidents_checklist_cannot_be_reopened(bot: BotHarness) -> None:
    """The menu goes with the resolve; one chosen from the message as it stood before is refused."""
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    stale = reopen_option(progress_message(bot, incident), "check-health")
    await bot.command("resolve cert renewed", channel=channel)
    closed = progress_message(bot, incident)
    assert buttons(closed) == {}

    await reopen(bot, closed, "check-health", user="U0BOB", channel=channel, option=stale)

    assert bot.last_reply() == "⚠️ INC-1 is resolved; its checklist is closed."
    assert (await current_states(bot, 1))["check-health"].state == StepStatus.DONE
    assert [e.data["status"] for e in await step_events(bot, 1)] == ["done"]


async def test_reopen_rechecks_who_clicked_and_the_step_in_the_database(bot: BotHarness) -> None:
    """The menu's value is a hint: the clicker must see the incident and work its restricted playbook, and
    a step already open again (two people fixing the same misclick) is said so, recorded once."""
    await bot.declare("P1 Leaked credentials in a public repo")
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")
    message = progress_message(bot, incident)
    [option] = buttons(message)[PlaybookActionId.REOPEN]["options"]
    step_id = option["value"].split(":")[1]

    await reopen(bot, message, step_id, user="U0BOB", channel=channel)  # not in the private channel
    assert "not one you can see" in bot.last_reply()
    bot.fake.channels[channel].members.add("U0BOB")
    bot.deps.incident_access.forget(channel_id=channel)
    await reopen(bot, message, step_id, user="U0BOB", channel=channel)  # a member, not the commander
    assert "Only the incident's commander can work the Security breach playbook" in bot.last_reply()
    assert (await current_states(bot, 1))[step_id].state == StepStatus.DONE

    await reopen(bot, message, step_id, user="U0ALICE", channel=channel)
    await reopen(bot, message, step_id, user="U0ALICE", channel=channel, option=option)  # the same option again
    assert bot.last_reply().endswith("is open already.")
    assert [e.data["status"] for e in await step_events(bot, 1)] == ["done", "reopened"]
    assert (await current_states(bot, 1))[step_id].state == StepStatus.PENDING


async def test_the_menu_of_a_replaced_playbook_reopens_nothing(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    channel = incident.channel_id or ""
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    message = progress_message(bot, incident)
    stale = reopen_option(message, "check-health")
    await bot.command("playbook database", user="U0BOB", channel=channel)

    await reopen(bot, message, "check-health", user="U0BOB", channel=channel, option=stale)

    assert "was replaced by another one" in bot.last_reply()
    assert [e.data["status"] for e in await step_events(bot, 1)] == ["done"]
