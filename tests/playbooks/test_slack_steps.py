"""Playbooks through the real app and the fake Slack: declare, pick, switch, and stepping through with
done and skip (races and restricted playbooks included)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from bot.incidents import flows as incident_flows
from bot.playbooks import runs
from bot.postmortem import service as postmortem
from bot.slack.adapters.playbooks import PlaybookActionId
from tests.conftest import make_settings
from tests.fakes.slack_api import FakeSlack
from tests.harness import BotHarness, running_bot
from tests.playbooks.conftest import (
    buttons,
    click,
    current_states,
    progress_message,
    step_events,
    text_of,
)

# --- starting ------------------------------------------------------------------------------------


async def test_declare_starts_the_matching_playbook(bot: BotHarness) -> None:
    incident = await bot.declare("P1 service:gateway Gateway down, 502 everywhere")
    incident = await bot.incident(incident.id or 0)
    assert incident.playbook_id == "service-down"
    message = progress_message(bot, incident)
    text = text_of(message)
    assert "Playbook: Service down" in text
    assert "👉 1. Check the health endpoints" in text and "⬜ 2. Look at what changed" in text
    assert "curl -sS -o /dev/null" in text and "/gateway/health" in text  # the catalog's URL filled in
    assert set(buttons(message)) == {PlaybookActionId.DONE, PlaybookActionId.SKIP, PlaybookActionId.RUN}
    assert buttons(message)[PlaybookActionId.RUN]["text"]["text"] == "Check health"
    [event] = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    assert event.actor == "U0ALICE"
    assert event.text == "Started playbook Service down (keywords 'down', '502')"


async def test_the_channel_ready_work_delivered_again_starts_nothing_more(bot: BotHarness) -> None:
    """A resumed setup or a Retry publishes IncidentChannelReady again: the running playbook stays the one."""
    incident = await bot.declare("P1 service:gateway Gateway down, 502 everywhere")
    await incident_flows.channel_ready(bot.deps, incident_id=incident.id or 0, actor="U0BOB")
    await bot.settle()
    incident = await bot.incident(incident.id or 0)
    progress_message(bot, incident)  # one message
    async with bot.deps.db.session() as session:
        assert len(await runs.runs(session, incident_id=incident.id or 0)) == 1
    assert [e.text for e in await bot.timeline(1) if e.kind == "playbook"] == [
        "Started playbook Service down (keywords 'down', '502')"
    ]


async def test_playbook_on_declare_wins_over_the_match(bot: BotHarness) -> None:
    await bot.declare("P2 playbook:database Checkout slow, p95 at 4s")
    incident = await bot.incident(1)
    assert incident.playbook_id == "database"
    assert "Playbook: Database issues" in text_of(progress_message(bot, incident))
    [event] = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    assert event.data["reason"] == "playbook:database chosen when declaring"


async def test_no_match_offers_a_picker_that_becomes_the_progress_message(bot: BotHarness) -> None:
    await bot.declare("P3 Weird numbers on the dashboard")
    incident = await bot.incident(1)
    assert incident.channel_id
    [picker] = [m for m in bot.fake.messages(incident.channel_id) if "Which playbook" in m.text]
    choices = buttons(picker)
    assert set(choices) == {
        f"{PlaybookActionId.PICK_PREFIX}{p}" for p in ("database", "high-latency", "security-breach", "service-down")
    }
    before = len(bot.fake.messages(incident.channel_id))
    await bot.click(
        f"{PlaybookActionId.PICK_PREFIX}high-latency",
        choices[f"{PlaybookActionId.PICK_PREFIX}high-latency"]["value"],
        user="U0BOB",
        channel=incident.channel_id,
        message_ts=picker.ts,
    )
    message = progress_message(bot, incident)
    assert message.ts == picker.ts and message.edited  # the picker was replaced in place
    assert len(bot.fake.messages(incident.channel_id)) == before
    assert "Playbook: High latency" in text_of(message)
    assert (await bot.incident(1)).playbook_id == "high-latency"
    [event] = [e for e in await bot.timeline(1) if e.kind == "playbook"]
    assert event.actor == "U0BOB" and "picked by U0BOB" in event.text


async def test_playbook_command_switches_and_keeps_one_message(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    first = progress_message(bot, incident)
    await bot.command("playbook database", user="U0BOB", channel=incident.channel_id or "")
    assert "now follows the Database issues playbook (was `service-down`)" in bot.last_reply()
    message = progress_message(bot, incident)
    assert message.ts == first.ts and "Playbook: Database issues" in text_of(message)
    kinds = [(e.kind, e.data.get("status")) for e in await bot.timeline(1) if e.kind == "playbook"]
    assert kinds == [("playbook", "started"), ("playbook", "switched"), ("playbook", "started")]
    # Asking for the running one again changes nothing.
    await bot.command("playbook database", channel=incident.channel_id or "")
    assert "already running" in bot.last_reply()
    # Unknown id: the grammar names the closest one.
    await bot.command("playbook databse", channel=incident.channel_id or "")
    assert "Did you mean: `/incident playbook database`" in bot.last_reply()


async def test_switching_a_public_incident_to_a_private_playbook_says_it_stays_public(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    await bot.command("playbook security-breach", user="U0BOB", channel=incident.channel_id or "")
    reply = bot.last_reply()
    assert "now follows the Security breach playbook" in reply
    assert "is for private incidents, but INC-1 is public" in reply and "/incident declare private" in reply
    message = progress_message(bot, incident)
    assert "this incident is public" in text_of(message)  # everyone in the channel reads it, not just the switcher
    assert not (await bot.incident(1)).private  # the channel was not made private behind people's backs


async def test_a_breach_that_names_the_database_is_declared_private(bot: BotHarness) -> None:
    await bot.declare("P1 Postgres breach")
    incident = await bot.incident(1)
    assert incident.private and incident.playbook_id == "security-breach"
    text = text_of(progress_message(bot, incident))
    assert "Playbook: Security breach" in text and "fits as well: `/incident playbook database`" in text


async def test_a_private_incident_on_the_security_playbook_has_no_public_warning(bot: BotHarness) -> None:
    await bot.declare("P1 Possible breach of the admin panel")
    incident = await bot.incident(1)
    assert incident.private
    assert "this incident is public" not in text_of(progress_message(bot, incident))


async def test_switching_back_keeps_the_steps_already_worked(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")  # check-health
    await click(bot, incident, PlaybookActionId.SKIP, user="U0CAROL")  # recent-deploys
    await bot.command("playbook database", user="U0BOB", channel=incident.channel_id or "")
    await bot.command("playbook service-down", user="U0BOB", channel=incident.channel_id or "")
    states = await current_states(bot, 1)
    assert (states["check-health"].state, states["check-health"].by) == ("done", "U0BOB")
    assert (states["recent-deploys"].state, states["recent-deploys"].by) == ("skipped", "U0CAROL")
    assert states["logs"].state == "pending"
    message = progress_message(bot, incident)  # still one message, showing the work kept
    assert "2/6 done" not in text_of(message) and "1/6 done · 1 skipped" in text_of(message)
    assert "Next: 3. Read the logs" in text_of(message)
    started = [e.text for e in await bot.timeline(1) if e.kind == "playbook" and e.data.get("status") == "started"]
    assert started[-1].endswith("; kept 2 steps worked before the switch")


# --- stepping through ----------------------------------------------------------------------------


async def test_step_through_with_done_and_skip(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    assert incident.channel_id
    posted = len(bot.fake.calls_to("chat.postMessage"))
    ts = progress_message(bot, incident).ts

    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    await click(bot, incident, PlaybookActionId.SKIP, user="U0CAROL")

    message = progress_message(bot, incident)
    assert message.ts == ts and message.edited
    assert len(bot.fake.calls_to("chat.postMessage")) == posted  # updated in place, never re-posted
    text = text_of(message)
    assert "✅ 1. Check the health endpoints — <@U0BOB>" in text
    assert "⏭ 2. Look at what changed — skipped by <@U0CAROL>" in text
    assert "👉 3. Read the logs" in text and "*Next: 3. Read the logs*" in text
    assert buttons(message)[PlaybookActionId.DONE]["value"].endswith(":logs")
    assert PlaybookActionId.RUN not in buttons(message)  # reading logs has no action
    events = await step_events(bot, 1)
    assert [(e.actor, e.data["status"], e.data["step_id"]) for e in events] == [
        ("U0BOB", "done", "check-health"),
        ("U0CAROL", "skipped", "recent-deploys"),
    ]


async def test_finishing_every_required_step(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    for _ in range(3):
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    # Restart and rollback are optional: skip them, verify is required.
    await click(bot, incident, PlaybookActionId.SKIP, user="U0BOB")
    await click(bot, incident, PlaybookActionId.SKIP, user="U0BOB")
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    message = progress_message(bot, incident)
    assert "All required steps are finished" in text_of(message)
    assert set(buttons(message)) == {PlaybookActionId.REOPEN}  # no Done, Skip or action: only undoing a click
    finished = [e for e in await bot.timeline(1) if e.kind == "playbook" and e.data.get("status") == "completed"]
    assert len(finished) == 1 and finished[0].text == "Finished playbook Service down: 4 done, 2 skipped"


async def test_two_people_clicking_done_at_once_is_recorded_once(bot: BotHarness) -> None:
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    await asyncio.gather(
        click(bot, incident, PlaybookActionId.DONE, user="U0BOB", settle=False),
        click(bot, incident, PlaybookActionId.DONE, user="U0CAROL", settle=False),
    )
    await bot.settle()
    events = await step_events(bot, 1)
    assert len(events) == 1
    winner = events[0].actor
    loser = "U0CAROL" if winner == "U0BOB" else "U0BOB"
    assert (await current_states(bot, 1))["check-health"].by == winner
    told = [r for r in bot.replies() if "already done" in r]
    assert told == [f"Step *Check the health endpoints* was already done by <@{winner}>."]
    assert loser not in text_of(progress_message(bot, incident))


async def test_restricted_playbook_only_the_lead_can_work_it(bot: BotHarness) -> None:
    await bot.declare("P1 Leaked credentials in a public repo")
    incident = await bot.incident(1)
    assert incident.playbook_id == "security-breach"
    assert bot.fake.channels[incident.channel_id or ""].is_private  # the playbook asked for a private channel
    assert "🔒 Incident lead only" in text_of(progress_message(bot, incident))
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")  # not in the private channel: sees nothing
    assert "not one you can see" in bot.last_reply()
    bot.fake.channels[incident.channel_id or ""].members.add("U0BOB")
    bot.deps.incident_access.forget(channel_id=incident.channel_id or "")
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")  # a member, but not the commander
    assert "Only the incident's commander can work the Security breach playbook (now: <@U0ALICE>)" in bot.last_reply()
    assert await step_events(bot, 1) == []
    await click(bot, incident, PlaybookActionId.DONE, user="U0ALICE")  # the declarer is the commander
    assert [e.actor for e in await step_events(bot, 1)] == ["U0ALICE"]


async def test_the_picker_of_a_resolved_incident_starts_nothing(bot: BotHarness) -> None:
    """A picker left in the channel is clicked after the resolve: playbooks are for open incidents."""
    await bot.declare("P3 Weird numbers on the dashboard")
    incident = await bot.incident(1)
    assert incident.channel_id
    [picker] = [m for m in bot.fake.messages(incident.channel_id) if "Which playbook" in m.text]
    await bot.command("resolve false alarm", channel=incident.channel_id)
    action_id = f"{PlaybookActionId.PICK_PREFIX}high-latency"
    await bot.click(
        action_id, buttons(picker)[action_id]["value"], user="U0BOB", channel=incident.channel_id, message_ts=picker.ts
    )
    assert "INC-1 is resolved" in bot.last_reply()
    assert [e for e in await bot.timeline(1) if e.kind == "playbook"] == []
    assert (await bot.incident(1)).playbook_id is None


async def test_a_pick_from_outside_the_channel_posts_the_checklist_in_it(bot: BotHarness) -> None:
    """A pick is acted on for someone who may see the incident, but only a message in its channel becomes
    its checklist: the clicked message's ts names no message there."""
    await bot.declare("P3 Weird numbers on the dashboard")
    incident = await bot.incident(1)
    assert incident.channel_id
    [picker] = [m for m in bot.fake.messages(incident.channel_id) if "Which playbook" in m.text]
    action_id = f"{PlaybookActionId.PICK_PREFIX}high-latency"
    value = buttons(picker)[action_id]["value"]
    elsewhere = bot.fake.user_says("C0GENERAL", "U0BOB", "lunch?")
    await bot.click(action_id, value, user="U0BOB", channel="C0GENERAL", message_ts=str(elsewhere["ts"]))
    assert (await bot.incident(1)).playbook_id == "high-latency"
    message = progress_message(bot, incident)
    assert message.channel == incident.channel_id and "Playbook: High latency" in text_of(message)
    assert not [r for r in bot.replies() if "⚠️" in r], bot.replies()


async def test_a_step_title_with_variables_is_recorded_as_shown(
    fake_slack: FakeSlack, database_url: str, tmp_path: Path
) -> None:
    """Step titles are templates like the instructions: the timeline, the post-mortem and the "already done"
    answer say the title the checklist showed, not its `{{ service }}`."""
    playbooks = tmp_path / "playbooks"
    playbooks.mkdir()
    (playbooks / "cache.yml").write_text(
        "id: cache\ntitle: Cache\nmatch: {keywords: [cache]}\nsteps:\n"
        "  - {id: flush, title: 'Flush the cache of {{ service }}', instructions: flush it}\n"
        "  - {id: check, title: 'Check {{ incident.ref }}', instructions: look}\n"
    )
    settings = make_settings(fake=fake_slack, database_url=database_url, tmp_path=tmp_path, playbooks_dir=playbooks)
    async with running_bot(fake=fake_slack, settings=settings) as bot:
        await bot.declare("P2 service:gateway Cache stampede")
        incident = await bot.incident(1)
        stale = progress_message(bot, incident)
        assert "1. Flush the cache of gateway" in text_of(stale)
        value = buttons(stale)[PlaybookActionId.DONE]["value"]
        await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
        [event] = await step_events(bot, 1)
        assert event.text == "Completed step 1/2 of Cache: Flush the cache of gateway"
        assert event.data["step_title"] == "Flush the cache of gateway"
        await bot.click(
            PlaybookActionId.DONE, value, user="U0CAROL", channel=incident.channel_id or "", message_ts=stale.ts
        )
        assert bot.last_reply() == "Step *Flush the cache of gateway* was already done by <@U0BOB>."
        async with bot.deps.db.session() as session:
            document = postmortem.render(await postmortem.build(session, incident_id=1))
        assert "{{" not in document and "| Cache | Flush the cache of gateway | done |" in document


async def test_resolving_closes_the_progress_message(bot: BotHarness) -> None:
    """After the resolve the progress message no longer offers Done, Skip or an action (each click was
    refused); it keeps the checklist as it stood and says the incident is resolved."""
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    assert incident.channel_id
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    await bot.command("resolve cert renewed", channel=incident.channel_id)
    message = progress_message(bot, incident)
    assert buttons(message) == {}
    text = text_of(message)
    assert "✅ 1. Check the health endpoints — <@U0BOB>" in text and "⬜ 2. Look at what changed" in text
    assert "INC-1 is resolved: the checklist is closed." in text
    assert "👉" not in text and "*Next:" not in text


async def test_a_pushpin_on_the_progress_message_keeps_its_latest_words(bot: BotHarness) -> None:
    """Someone 📌s the playbook's progress message, then steps are done: the bot edits it in place, but
    Bolt drops the bot's own `message_changed`, so the key line kept the count of the moment it was marked."""
    await bot.declare("P1 service:gateway Gateway down")
    incident = await bot.incident(1)
    channel, ts = incident.channel_id, progress_message(bot, incident).ts
    assert channel
    item = {"type": "message", "channel": channel, "ts": ts}
    await bot.event({"type": "reaction_added", "user": "U0CAROL", "reaction": "pushpin", "item": item})

    async def key_lines() -> list[str]:
        return [e.text for e in await bot.timeline(1) if e.message_ts == ts and e.key]

    marked = progress_message(bot, incident).text
    assert await key_lines() == [marked]
    await click(bot, incident, PlaybookActionId.DONE, user="U0BOB")
    now = progress_message(bot, incident).text
    assert now != marked and "1/" in now
    assert await key_lines() == [now]
